#pragma once
// Latency samples and the summary every syncbench command prints: a line a
// person reads, or one JSON object with --json.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
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

// A process's resident memory in KiB, from /proc; -1 when it cannot be read.
inline long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

inline nlohmann::ordered_json machine() {
  return {{"cores", std::thread::hardware_concurrency()}};
}

}  // namespace syncbench
