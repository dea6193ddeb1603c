#include "engine/compactor.h"

#include <spdlog/spdlog.h>

#include "observe/metrics.h"

namespace syncd::engine {

Compactor::Compactor(const store::ChangeLogFactory& factory, CompactorOptions options)
    : options_(options), worker_(factory, 1), timer_([this] { run_timer(); }) {}

Compactor::~Compactor() { stop(); }

void Compactor::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cancel_ = true;
  wake_.notify_all();
  timer_.join();
  worker_.stop();
}

store::CompactRequest Compactor::request(std::string channel, std::int64_t through, bool force) const {
  return store::CompactRequest{std::move(channel), through, force, options_.dedup_seconds, options_.batch_rows,
                               &cancel_};
}

void Compactor::count(const store::CompactResult& result) {
  if (result.compacted_through == result.previous) return;
  auto& m = observe::Metrics::get();
  m.compactions.Increment();
  m.compacted_patches.Increment(static_cast<double>(result.compacted_through - result.previous));
  m.last_compaction.SetToCurrentTime();
}

void Compactor::compact(std::string channel, std::int64_t through, bool force, Done done) {
  worker_.submit([this, r = request(std::move(channel), through, force), done = std::move(done)](store::ChangeLog& log) {
    auto result = log.compact(r, /*wait=*/true);
    if (result.ok()) count(*result);
    done(std::move(result));
  });
}

void Compactor::run_timer() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // One pass queued at a time: a pass slower than the interval delays
    // the next instead of piling up.
    auto pass_done = std::make_shared<bool>(false);
    worker_.submit([this, pass_done](store::ChangeLog& log) {
      retention_pass(log);
      std::lock_guard l(mu_);
      *pass_done = true;
      wake_.notify_all();
    });
    wake_.wait(lock, [&] { return stopping_ || *pass_done; });
    wake_.wait_for(lock, options_.interval, [&] { return stopping_; });
  }
}

void Compactor::retention_pass(store::ChangeLog& log) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
  }
  auto due = log.retention_due(options_.defaults);
  if (!due.ok()) {
    spdlog::warn("retention pass skipped: {}", std::string(due.status().message()));
    return;
  }
  int left = 0;  // channels past their rule this pass could not compact
  for (const auto& [channel, through] : *due) {
    const auto started = std::chrono::steady_clock::now();
    auto result = log.compact(request(channel, through, false), /*wait=*/false);
    if (result.ok()) {
      if (result->compacted_through == result->previous) continue;  // another instance got there first
      count(*result);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      spdlog::info("retention: compacted channel {} versions {}-{} ({} ms)", channel, result->previous + 1,
                   result->compacted_through, ms.count());
    } else if (!absl::IsAborted(result.status())) {  // aborted: another instance has it
      ++left;
      spdlog::warn("retention: channel {} not compacted: {}", channel, std::string(result.status().message()));
    }
  }
  // Bounded batches, so one pass never holds a long transaction.
  for (int i = 0; i < 100; ++i) {
    auto expired = log.expire_ids(options_.dedup_seconds, 10'000);
    if (!expired.ok() || *expired < 10'000) break;
  }
  auto& m = observe::Metrics::get();
  m.retention_left.Set(left);
  m.retention_pass.SetToCurrentTime();
}

}  // namespace syncd::engine
