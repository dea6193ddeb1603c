#include "auth/rate_limiter.h"

#include <algorithm>

namespace syncd::auth {

namespace {
// Idle buckets are dropped once the table grows past this, so subjects that
// come and go cannot grow memory without bound.
constexpr std::size_t kMaxIdleBuckets = 100'000;
}  // namespace

bool RateLimiter::admit_patch(const std::string& subject, std::size_t bytes, Clock::time_point now) {
  if (limits_.patches_per_second <= 0 && limits_.bytes_per_second <= 0) return true;
  std::lock_guard lock(mu_);
  if (buckets_.size() > kMaxIdleBuckets && now - last_sweep_ > std::chrono::seconds(1)) {
    // A bucket idle for a second is full again: it holds no state worth keeping.
    last_sweep_ = now;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double idle = std::chrono::duration<double>(now - it->second.last).count();
      it = idle > 1.0 ? buckets_.erase(it) : std::next(it);
    }
  }
  Bucket& b = buckets_[subject];
  const double p_cap = limits_.patches_per_second, b_cap = limits_.bytes_per_second;
  if (!b.primed) {
    b.patches = p_cap, b.bytes = b_cap, b.primed = true;
  } else {
    const double dt = std::chrono::duration<double>(now - b.last).count();
    b.patches = std::min(p_cap, b.patches + dt * p_cap);
    b.bytes = std::min(b_cap, b.bytes + dt * b_cap);
  }
  b.last = now;
  const bool patches_ok = p_cap <= 0 || b.patches >= 1;
  // A patch larger than a second's budget passes only from a full bucket.
  const bool bytes_ok = b_cap <= 0 || b.bytes >= std::min<double>(static_cast<double>(bytes), b_cap);
  if (!patches_ok || !bytes_ok) return false;
  if (p_cap > 0) b.patches -= 1;
  if (b_cap > 0) b.bytes -= static_cast<double>(bytes);
  return true;
}

}  // namespace syncd::auth
