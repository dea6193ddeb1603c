#pragma once
// Group commit: one thread turns queued patches into transactions.
//
// While a transaction commits, new patches queue up; when it ends, the
// thread takes everything queued (up to max_batch, across channels) into
// the next one. Batches grow with load and commit latency alone, with no
// timer. After COMMIT the thread answers every submission and publishes the
// accepted patches to the hub in version order.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "api/messages.h"
#include "engine/hub.h"
#include "store/change_log.h"

namespace syncd::engine {

struct CommitterOptions {
  std::size_t max_batch = 2000;    // submissions per transaction
  std::size_t max_queue = 100000;  // beyond this, submissions are refused at once
  int max_attempts = 3;            // for a batch that failed with nothing stored
};

class Committer {
 public:
  // `status` is OK when `ack` is the final answer (accepted, rejected or
  // ignored). Otherwise the outcome is unknown (the connection broke during
  // COMMIT): the client must resend the patch to learn it.
  using Done = std::function<void(const api::Ack& ack, const absl::Status& status)>;

  Committer(std::unique_ptr<store::ChangeLog> log, Hub& hub, CommitterOptions options);
  ~Committer();  // stop()

  // Thread-safe; never blocks on the database. `done` runs on the committer
  // thread. `origin` is the subscriber that must not get the patch back.
  void submit(store::Submission submission, std::uint64_t origin, Done done);

  // Commits what is queued, answers it, then stops the thread. Later
  // submissions are answered `rejected` / unavailable at once.
  void stop();

 private:
  struct Item {
    store::Submission submission;
    std::uint64_t origin;
    Done done;
  };
  void run();
  void commit(std::vector<Item>& items);

  const CommitterOptions options_;
  std::unique_ptr<store::ChangeLog> log_;  // used by the committer thread only
  Hub& hub_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Item> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::thread thread_;
};

// An ack that says the patch was refused before it reached the database.
api::Ack refused(const api::Patch& patch, const std::string& code, const std::string& reason);

}  // namespace syncd::engine
