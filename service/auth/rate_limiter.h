#pragma once
// Per-subject rate limits, so that no client can starve the others: a token
// bucket on patches/s and one on bytes/s. (Caps on open streams:
// server/stream_caps.h.)
//
// The subject is the token's `sub` (with authentication off nothing is
// limited: a self-declared clientId would stop no abuser). A patch over the
// limit is answered `rejected` with code `rate_limited` by
// the caller; nothing is dropped silently. Buckets start full: a burst of
// one second's worth is allowed. Thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace syncd::auth {

struct RateLimits {
  double patches_per_second = 1000;   // 0: unlimited
  double bytes_per_second = 1 << 20;  // 0: unlimited
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(RateLimits limits) : limits_(limits) {}

  // Takes one patch of `bytes` from the subject's buckets; false (and
  // nothing taken) when either is empty.
  bool admit_patch(const std::string& subject, std::size_t bytes, Clock::time_point now = Clock::now());

  const RateLimits& limits() const { return limits_; }

 private:
  struct Bucket {
    double patches = 0, bytes = 0;
    Clock::time_point last{};
    bool primed = false;
  };

  RateLimits limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;   // guarded by mu_
  Clock::time_point last_sweep_{};                    // guarded by mu_
};

}  // namespace syncd::auth
