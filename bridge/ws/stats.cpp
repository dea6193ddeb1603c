#include "ws/stats.h"

#include <nlohmann/json.hpp>

namespace bridge {

void Stats::socket_opened(const std::string& channel) {
  std::lock_guard lock(mu_);
  ++connections_;
  ++per_channel_[channel];
}

void Stats::socket_closed(const std::string& channel) {
  std::lock_guard lock(mu_);
  --connections_;
  if (--per_channel_[channel] <= 0) per_channel_.erase(channel);
}

std::string Stats::to_json(const std::string& upstream_state) const {
  nlohmann::ordered_json j;
  {
    std::lock_guard lock(mu_);
    j["connections"] = connections_;
    j["channels"] = per_channel_;
  }
  j["messagesIn"] = messages_in_.load();
  j["messagesOut"] = messages_out_.load();
  j["errors"] = errors_.load();
  j["upstream"] = upstream_state;
  return j.dump();
}

}  // namespace bridge
