#pragma once
// Threads that read the log (history pages, catch-up, unary reads), each
// with its own database connection, so that no gRPC callback thread ever
// waits on PostgreSQL.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "store/change_log.h"

namespace syncd::engine {

class ReaderPool {
 public:
  using Task = std::function<void(store::ChangeLog& log)>;

  ReaderPool(const store::ChangeLogFactory& factory, int threads);
  ~ReaderPool();  // stop()

  // Thread-safe. Tasks run in FIFO order on any reader thread. Each
  // subscriber keeps at most one task queued, so the queue is bounded by
  // the number of open calls.
  void submit(Task task);
  // Runs what is queued, then joins the threads.
  void stop();

 private:
  void run(store::ChangeLog& log);

  std::vector<std::unique_ptr<store::ChangeLog>> logs_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Task> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace syncd::engine
