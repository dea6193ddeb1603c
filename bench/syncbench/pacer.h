#pragma once
// An offered load: write k (k = 0, 1, ...) is due at start + k / rate.
// A thread wakes every 200 µs and hands out every write due by then (a
// sleep per write would cap the rate near 1 / the kernel's timer slack).
// Latency counts from the due time, so a stall that delays sending is
// measured, not hidden.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include "report.h"

namespace syncbench {

class Pacer {
 public:
  // `owe(k, due)` runs on the pacer's thread, in order of k, until stop().
  Pacer(double rate, std::function<void(std::int64_t, Clock::time_point)> owe)
      : thread_([this, rate, owe = std::move(owe)] {
          const auto start = Clock::now();
          const auto interval = std::chrono::duration<double>(1.0 / rate);
          const auto due = [&](std::int64_t k) {
            return start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(k));
          };
          std::int64_t k = 0;
          while (!stop_) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            for (const auto now = Clock::now(); due(k) <= now && !stop_; ++k) owe(k, due(k));
          }
        }) {}
  ~Pacer() { stop(); }
  Pacer(const Pacer&) = delete;
  Pacer& operator=(const Pacer&) = delete;

  // No write is handed out after this returns.
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace syncbench
