#pragma once
// Latency samples and the summary every syncbench command prints: a line a
// person reads, or one JSON object with --json.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace syncbench {

using Clock = std::chrono::steady_clock;

// Microsecond latencies; merged from per-thread vectors at the end.
struct Latencies {
  std::vector<std::int64_t> us;
  void add(Clock::duration d) { us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(d).count()); }
  void merge(const Latencies& o) { us.insert(us.end(), o.us.begin(), o.us.end()); }
  // The q-quantile in milliseconds (q in [0, 1]).
  double quantile_ms(double q) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))] / 1000.0;
  }
};

inline nlohmann::ordered_json machine() {
  return {{"cores", std::thread::hardware_concurrency()}};
}

}  // namespace syncbench
