#include "engine/committer.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace syncd::engine {

api::Ack refused(const api::Patch& patch, const std::string& code, const std::string& reason) {
  api::Ack ack;
  ack.set_patch_id(patch.id());
  ack.set_status(api::Ack::REJECTED);
  ack.set_code(code);
  ack.set_reason(reason);
  return ack;
}

Committer::Committer(std::unique_ptr<store::ChangeLog> log, Hub& hub, CommitterOptions options)
    : options_(options), log_(std::move(log)), hub_(hub), thread_([this] { run(); }) {}

Committer::~Committer() { stop(); }

void Committer::submit(store::Submission submission, std::uint64_t origin, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < options_.max_queue) {
      queue_.push_back(Item{std::move(submission), origin, std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done(refused(submission.patch, "unavailable", "the server is overloaded or stopping; retry"),
       absl::OkStatus());
}

void Committer::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void Committer::run() {
  std::vector<Item> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is answered
      const std::size_t n = std::min(queue_.size(), options_.max_batch);
      batch.clear();
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    commit(batch);
  }
}

void Committer::commit(std::vector<Item>& items) {
  std::vector<store::Submission> subs;
  subs.reserve(items.size());
  for (Item& item : items) subs.push_back(std::move(item.submission));

  absl::StatusOr<store::CommitResult> result;
  for (int attempt = 1;; ++attempt) {
    result = log_->commit(subs);
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
    spdlog::error("commit of {} patches failed: {}", subs.size(), std::string(st.message()));
    const std::string code = absl::IsUnavailable(st) ? "unavailable" : "internal";
    for (std::size_t i = 0; i < items.size(); ++i) {
      items[i].done(refused(subs[i].patch, code, "the database is unavailable; retry"),
                    absl::OkStatus());
    }
    return;
  }

  for (std::size_t i = 0; i < items.size(); ++i) items[i].done(result->acks[i], absl::OkStatus());

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
