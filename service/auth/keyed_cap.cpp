#include "auth/keyed_cap.h"

#include <algorithm>

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

std::vector<std::string> KeyedCap::keys(std::size_t max) const {
  std::vector<std::string> out;
  {
    std::lock_guard lock(mu_);
    out.reserve(std::min(max, open_.size()));
    for (const auto& [key, n] : open_) {
      if (out.size() == max) break;
      out.push_back(key);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t KeyedCap::key_count() const {
  std::lock_guard lock(mu_);
  return open_.size();
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
