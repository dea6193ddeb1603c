#pragma once
// Group commit: committer threads turn queued patches into transactions.
//
// Channels are spread over `connections` shards by name; each shard is one
// thread with its own database connection and queue, and a channel always
// goes to the same shard, so its patches commit in the order submitted.
// While a shard's transaction commits, new patches queue up; when it ends,
// the thread takes everything queued (up to max_batch, across its channels)
// into the next one. Batches grow with load and commit latency alone, with
// no timer. After COMMIT the thread answers every submission and publishes
// the accepted patches to the hub in version order. Shards touch disjoint
// channel rows, so their transactions never wait on each other, and
// PostgreSQL flushes their commits together.

#include <chrono>
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
  int connections = 2;             // shards: threads, each with its own connection
  std::size_t max_batch = 2000;    // submissions per transaction
  std::size_t max_queue = 100000;  // per shard; beyond it, submissions are refused at once
  int max_attempts = 3;            // for a batch that failed with nothing stored
};

class Committer {
 public:
  // `status` is OK when `ack` is the final answer (accepted, rejected or
  // ignored). Otherwise the outcome is unknown (the connection broke during
  // COMMIT): the client must resend the patch to learn it.
  using Done = std::function<void(const api::Ack& ack, const absl::Status& status)>;

  // `database_ready`, when given, is asked before each attempt: while it
  // says no, batches are refused `unavailable` at once rather than held
  // through connection timeouts.
  Committer(const store::ChangeLogFactory& factory, Hub& hub, CommitterOptions options,
            std::function<bool()> database_ready = {});
  ~Committer();  // stop()

  // Thread-safe; never blocks on the database. `done` runs on the channel's
  // committer thread. `origin` is the subscriber that must not get the patch back.
  void submit(store::Submission submission, std::uint64_t origin, Done done);

  // Commits what is queued, answers it, then stops the thread. Later
  // submissions are answered `rejected` / unavailable at once.
  void stop();

 private:
  struct Item {
    store::Submission submission;
    std::uint64_t origin;
    Done done;
    std::chrono::steady_clock::time_point queued;
  };
  struct Shard {
    std::unique_ptr<store::ChangeLog> log;  // used by the shard's thread only
    std::mutex mu;
    std::condition_variable wake;
    std::deque<Item> queue;  // guarded by mu
    bool stopping = false;   // guarded by mu
    std::thread thread;
  };
  void run(Shard& shard);
  void commit(store::ChangeLog& log, std::vector<Item>& items);

  const CommitterOptions options_;
  Hub& hub_;
  const std::function<bool()> database_ready_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

// An ack that says the patch was refused before it reached the database.
api::Ack refused(const api::Patch& patch, const std::string& code, const std::string& reason);

// Counts an ack the client is about to receive in the patch metrics.
void count_ack(const api::Ack& ack);

}  // namespace syncd::engine
