#include "ws/broadcast_cache.h"

#include "codec/json_codec.h"

namespace bridge {

std::shared_ptr<const std::string> BroadcastCache::frame(const std::string& channel, std::int64_t version,
                                                         std::string_view encoded) {
  std::string key = channel;
  key += '\n';
  key += std::to_string(version);
  {
    std::lock_guard lock(mu_);
    if (auto it = frames_.find(key); it != frames_.end()) return it->second;
  }
  api::Patch patch;
  if (!patch.ParseFromArray(encoded.data(), static_cast<int>(encoded.size()))) return nullptr;
  auto bytes = std::make_shared<const std::string>(codec::encode_broadcast(patch));
  std::lock_guard lock(mu_);
  auto [it, inserted] = frames_.emplace(key, bytes);
  if (inserted) {
    order_.push_back(std::move(key));
    if (order_.size() > capacity_) {
      frames_.erase(order_.front());
      order_.pop_front();
    }
  }
  return it->second;
}

}  // namespace bridge
