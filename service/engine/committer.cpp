#include "engine/committer.h"

#include <spdlog/spdlog.h>

#include "observe/metrics.h"

#include <algorithm>
#include <atomic>
#include <chrono>

namespace syncd::engine {
namespace {

// At most once a minute: when one announcement fails, usually every one
// does (a listener that stopped reading fills PostgreSQL's notification
// queue), and the log would say the same thing at every commit.
void warn_unannounced(const std::string& why) {
  static std::atomic<std::int64_t> last{-1};
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t previous = last.load();
  if (previous >= 0 && now - previous < 60) return;
  if (!last.compare_exchange_strong(previous, now)) return;
  spdlog::warn("a commit is stored but other instances were not told ({}); their subscribers get it "
               "from the head poll within 4 s",
               why);
}

}  // namespace

api::Ack refused(const api::Patch& patch, const std::string& code, const std::string& reason) {
  api::Ack ack;
  ack.set_patch_id(patch.id());
  ack.set_status(api::Ack::REJECTED);
  ack.set_code(code);
  ack.set_reason(reason);
  return ack;
}

void count_ack(const api::Ack& ack) {
  auto& m = observe::Metrics::get();
  switch (ack.status()) {
    case api::Ack::ACCEPTED: m.accepted(); break;
    case api::Ack::IGNORED: m.ignored(); break;
    default: m.rejected(ack.code()); break;
  }
}

Committer::Committer(const store::ChangeLogFactory& factory, Hub& hub, CommitterOptions options,
                     std::function<bool()> database_ready)
    : options_(options), hub_(hub), database_ready_(std::move(database_ready)) {
  for (int i = 0; i < std::max(options_.connections, 1); ++i) {
    auto shard = std::make_unique<Shard>();
    shard->log = factory();
    shards_.push_back(std::move(shard));
  }
  for (auto& shard : shards_) shard->thread = std::thread([this, s = shard.get()] { run(*s); });
}

Committer::~Committer() { stop(); }

void Committer::submit(store::Submission submission, std::uint64_t origin, Done done) {
  Shard& shard = *shards_[std::hash<std::string>{}(submission.channel) % shards_.size()];
  {
    std::lock_guard lock(shard.mu);
    if (!shard.stopping && shard.queue.size() < options_.max_queue) {
      shard.queue.push_back(Item{std::move(submission), origin, std::move(done), std::chrono::steady_clock::now()});
      shard.wake.notify_one();
      return;
    }
  }
  done(refused(submission.patch, "unavailable", "the server is overloaded or stopping; retry"),
       absl::OkStatus());
}

void Committer::stop() {
  for (auto& shard : shards_) {
    std::lock_guard lock(shard->mu);
    shard->stopping = true;
    shard->wake.notify_one();
  }
  for (auto& shard : shards_) {
    if (shard->thread.joinable()) shard->thread.join();
  }
}

void Committer::run(Shard& shard) {
  std::vector<Item> batch;
  for (;;) {
    {
      std::unique_lock lock(shard.mu);
      shard.wake.wait(lock, [&] { return shard.stopping || !shard.queue.empty(); });
      if (shard.queue.empty()) return;  // stopping, and everything is answered
      const std::size_t n = std::min(shard.queue.size(), options_.max_batch);
      batch.clear();
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(shard.queue.front()));
        shard.queue.pop_front();
      }
    }
    const auto started = std::chrono::steady_clock::now();
    observe::LatencyBatch waited;
    for (const Item& item : batch) waited.add(std::chrono::duration<double>(started - item.queued).count());
    waited.record(observe::Metrics::get().stage_queue);
    commit(*shard.log, batch);
    // The answered items hold their senders (a stream's last patches): let go now, not at the next batch.
    batch.clear();
  }
}

void Committer::commit(store::ChangeLog& log, std::vector<Item>& items) {
  std::vector<store::Submission> subs;
  subs.reserve(items.size());
  for (Item& item : items) subs.push_back(std::move(item.submission));

  absl::StatusOr<store::CommitResult> result;
  bool gated = false;  // refused without trying: the outage is logged once, by the probe
  for (int attempt = 1;; ++attempt) {
    if (database_ready_ && !database_ready_()) {
      result = absl::UnavailableError("the database is unreachable");
      gated = true;
      break;
    }
    const auto started = std::chrono::steady_clock::now();
    result = log.commit(subs);
    auto& metrics = observe::Metrics::get();
    if (result.ok()) {
      const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      metrics.commit_seconds.Observe(took);
      observe::LatencyBatch committed;  // per patch, as the other stages
      for (std::size_t i = 0; i < subs.size(); ++i) committed.add(took);
      committed.record(metrics.stage_commit);
      metrics.commit_batch_patches.Observe(static_cast<double>(subs.size()));
      if (!result->unannounced.empty()) {
        metrics.database_errors.Increment();
        warn_unannounced(result->unannounced);
      }
    } else {
      metrics.database_errors.Increment();
    }
    if (result.ok() || !absl::IsUnavailable(result.status()) || attempt >= options_.max_attempts) {
      break;
    }
    spdlog::warn("commit of {} patches failed ({}); retrying", subs.size(), std::string(result.status().message()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));  // reconnect backoff
  }

  if (!result.ok()) {
    const absl::Status& st = result.status();
    if (absl::IsUnknown(st)) {
      spdlog::error("{} patches in doubt: {}", subs.size(), std::string(st.message()));
      for (std::size_t i = 0; i < items.size(); ++i) items[i].done(refused(subs[i].patch, "", ""), st);
      return;
    }
    // Nothing was stored: a rejection is the truth.
    if (!gated) spdlog::error("commit of {} patches failed: {}", subs.size(), std::string(st.message()));
    const std::string code = absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st) ? "unavailable" : "internal";
    for (std::size_t i = 0; i < items.size(); ++i) {
      items[i].done(refused(subs[i].patch, code, "the database is unavailable; retry"),
                    absl::OkStatus());
    }
    return;
  }

  const auto now = std::chrono::steady_clock::now();
  auto& ack_seconds = observe::Metrics::get().ack_seconds;
  for (std::size_t i = 0; i < items.size(); ++i) {
    ack_seconds.Observe(std::chrono::duration<double>(now - items[i].queued).count());
    items[i].done(result->acks[i], absl::OkStatus());
  }

  // Publish in version order. Each accepted patch is matched to its sender by
  // position: within a channel, acks and accepted patches share the order.
  std::unordered_map<std::string, std::vector<std::uint64_t>> origins;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (result->acks[i].status() == api::Ack::ACCEPTED) {
      origins[subs[i].channel].push_back(items[i].origin);
    }
  }
  for (const store::ChannelBatch& cb : result->accepted) {
    const auto& from = origins[cb.channel];
    std::vector<Published> out;
    out.reserve(cb.patches.size());
    for (std::size_t k = 0; k < cb.patches.size(); ++k) {
      out.push_back({cb.patches[k], from[k], std::make_shared<const std::string>(cb.patches[k]->SerializeAsString())});
    }
    hub_.publish(cb.channel, out);
  }
}

}  // namespace syncd::engine
