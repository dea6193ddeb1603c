#include "auth/keyed_cap.h"

namespace syncd::auth {

KeyedCap::Hold& KeyedCap::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    release();
    cap_ = other.cap_;
    key_ = std::move(other.key_);
    other.cap_ = nullptr;
  }
  return *this;
}

void KeyedCap::Hold::release() {
  if (cap_ != nullptr) cap_->give_back(key_);
  cap_ = nullptr;
}

KeyedCap::Hold KeyedCap::take(std::string key) {
  std::lock_guard lock(mu_);
  std::size_t& n = open_[key];
  if (limit_ > 0 && n >= limit_ && uncapped_.count(key) == 0) return {};
  ++n;
  return Hold(this, std::move(key));
}

void KeyedCap::give_back(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = open_.find(key);
  if (it != open_.end() && --it->second == 0) open_.erase(it);
}

}  // namespace syncd::auth
