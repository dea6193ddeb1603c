#include "ws/socket_caps.h"

namespace bridge {

SocketCap::Hold& SocketCap::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    release();
    cap_ = other.cap_;
    key_ = std::move(other.key_);
    other.cap_ = nullptr;
  }
  return *this;
}

void SocketCap::Hold::release() {
  if (cap_ != nullptr) cap_->give_back(key_);
  cap_ = nullptr;
}

SocketCap::Hold SocketCap::take(std::string key) {
  std::lock_guard lock(mu_);
  std::size_t& n = open_[key];
  if (limit_ > 0 && n >= limit_) {
    return {};
  }
  ++n;
  return Hold(this, std::move(key));
}

void SocketCap::give_back(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = open_.find(key);
  if (it != open_.end() && --it->second == 0) open_.erase(it);
}

}  // namespace bridge
