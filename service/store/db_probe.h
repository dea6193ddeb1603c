#pragma once
// Whether the database can be reached right now: a thread that runs
// `SELECT 1` on its own connection every interval. It drives readiness
// (/readyz, gRPC health) and lets the committer refuse a batch at once
// while the database is known to be away, instead of holding it through
// connection timeouts.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace syncd::store {

class DatabaseProbe {
 public:
  // `changed(ready, reason)` runs on the probe's thread whenever the answer
  // changes (reason: why not, empty when ready). Starts as ready: syncd
  // reached the database before it started serving.
  using Changed = std::function<void(bool ready, const std::string& reason)>;
  DatabaseProbe(std::string database_url, std::chrono::milliseconds interval, Changed changed);
  ~DatabaseProbe();  // stop()
  void stop();

  bool ready() const { return ready_.load(std::memory_order_relaxed); }

 private:
  void run();

  const std::string url_;
  const std::chrono::milliseconds interval_;
  const Changed changed_;
  std::atomic<bool> ready_{true};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace syncd::store
