#include "ws/read_rate.h"

#include <algorithm>

namespace bridge {

std::optional<std::chrono::steady_clock::time_point> ReadRate::charge(std::size_t bytes) {
  if (rate_ == 0) return std::nullopt;
  using namespace std::chrono;
  const auto cost = [this](std::size_t b) {
    return duration_cast<steady_clock::duration>(duration<double>(static_cast<double>(b) / static_cast<double>(rate_)));
  };
  const auto now = steady_clock::now();
  paid_until_ = std::max(paid_until_, now) + cost(std::max(bytes, min_cost_));
  const auto resume = paid_until_ - cost(std::max(rate_, burst_));
  if (resume <= now) return std::nullopt;
  return resume;
}

}  // namespace bridge
