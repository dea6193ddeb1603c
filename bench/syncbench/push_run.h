#pragma once
// push's timeline, the same for either target: writes paced by --rate when
// it is set (write k due on stream k % streams), a warm-up, then
// `measuring` for --duration-ms; then the streams stop and their last
// answers arrive. Stream needs owe(due), stop() and wait(timeout).

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "commands.h"
#include "pacer.h"

namespace syncbench {

// Returns the measured seconds.
template <class Stream>
double run_push(const PushOptions& o, std::vector<std::unique_ptr<Stream>>& streams, std::atomic<bool>& measuring) {
  std::optional<Pacer> pacer;
  if (o.rate > 0) {
    pacer.emplace(o.rate, [&](std::int64_t k, Clock::time_point due) { streams[k % streams.size()]->owe(due); });
  }
  std::this_thread::sleep_for(o.warmup);
  measuring = true;
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(o.duration);
  measuring = false;
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (pacer) pacer->stop();
  for (auto& st : streams) st->stop();
  for (auto& st : streams) st->wait(std::chrono::seconds(30));  // the last answers
  return seconds;
}

}  // namespace syncbench
