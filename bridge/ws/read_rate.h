#pragma once
// --max-read-rate for one connection, as a virtual clock (GCRA): when its
// reads so far would have been paid for at `bytes_per_second`. Up to one
// second's worth (or one largest frame) may run ahead; beyond that,
// reading waits for the clock. Not thread-safe: one strand owns it.

#include <chrono>
#include <cstddef>
#include <optional>

namespace bridge {

class ReadRate {
 public:
  // `bytes_per_second` 0: no limit. Each read costs at least `min_cost`.
  ReadRate(std::size_t bytes_per_second, std::size_t burst, std::size_t min_cost)
      : rate_(bytes_per_second), burst_(burst), min_cost_(min_cost) {}

  // Pays for a read of `bytes`: when the next read may start, or nullopt for now.
  std::optional<std::chrono::steady_clock::time_point> charge(std::size_t bytes);

 private:
  const std::size_t rate_;
  const std::size_t burst_;
  const std::size_t min_cost_;
  std::chrono::steady_clock::time_point paid_until_{};
};

}  // namespace bridge
