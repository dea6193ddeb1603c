#pragma once
// Where this process compacts logs: Compact calls and the retention pass
// both run on one thread with its own database connection, so a long
// compaction never holds a reader or the committer, and retention never
// races this instance's own Compact calls. Across instances, the change
// log's advisory lock keeps one compactor per channel (see
// store::ChangeLog::compact).
//
// The retention pass runs every `interval`: for each channel whose
// retention allows it, it compacts what may go (channels holding opaque
// patches are skipped and logged), then forgets compacted ids older than
// the dedup window, in bounded batches.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "engine/reader_pool.h"
#include "store/change_log.h"

namespace syncd::engine {

struct CompactorOptions {
  std::chrono::seconds interval{60};
  store::Retention defaults;             // for channels that set none
  std::int64_t dedup_seconds = 7 * 86400;  // how long compacted ids stay
  std::size_t batch_rows = 1000;         // log rows per transaction
};

class Compactor {
 public:
  using Done = std::function<void(absl::StatusOr<store::CompactResult>)>;

  Compactor(const store::ChangeLogFactory& factory, CompactorOptions options);
  ~Compactor();  // stop()

  // Compacts `channel` through `through` (waiting for another instance's
  // compaction of it to end); `done` runs on the compaction thread.
  void compact(std::string channel, std::int64_t through, bool force, Done done);
  void stop();

  const CompactorOptions& options() const { return options_; }

 private:
  void run_timer();
  void retention_pass(store::ChangeLog& log);
  // Counts a compaction that moved the horizon in the metrics.
  static void count(const store::CompactResult& result);
  store::CompactRequest request(std::string channel, std::int64_t through, bool force) const;

  const CompactorOptions options_;
  ReaderPool worker_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::atomic<bool> cancel_{false};  // set by stop(): compactions end early
  std::thread timer_;
};

}  // namespace syncd::engine
