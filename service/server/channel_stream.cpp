#include "server/channel_stream.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "engine/committer.h"
#include "observe/metrics.h"
#include "server/wire.h"

namespace syncd::server {

using Clock = std::chrono::steady_clock;

ChannelStream::ChannelStream(Kind kind, engine::ReaderPool& readers, StreamLimits limits,
                             Writer* writer)
    : kind_(kind),
      readers_(readers),
      limits_(limits),
      writer_(writer),
      last_activity_(Clock::now()),
      last_heartbeat_(Clock::now()) {
  auto& m = observe::Metrics::get();
  (kind_ == Kind::kSession ? m.sessions : m.watches).Increment();
}

ChannelStream::~ChannelStream() {
  auto& m = observe::Metrics::get();
  (kind_ == Kind::kSession ? m.sessions : m.watches).Decrement();
}

void ChannelStream::bind(std::string channel, bool batch) {
  channel_ = std::move(channel);
  std::lock_guard lock(mu_);
  batch_ = batch;
}

bool ChannelStream::behind() const {
  std::lock_guard lock(mu_);
  return mode_ == Mode::kLive && overflowed_;
}

void ChannelStream::start(std::int64_t from, std::int64_t head) {
  std::lock_guard lock(mu_);
  const std::int64_t seen = cursor_.known_head();  // commits noted while pending
  // A client claiming a version the channel never reached (it was deleted
  // and recreated, or restored from a backup) gets the state as it is.
  snapshot_due_ = from > std::max(head, seen);
  cursor_ = engine::Cursor(snapshot_due_ ? head : from);
  cursor_.note_head(std::max(head, seen));
  mode_ = kind_ == Kind::kSession || snapshot_due_ ? Mode::kHistory : Mode::kLive;
  maybe_read();
  pump();
}

void ChannelStream::send(api::SessionResponse msg) {
  std::lock_guard lock(mu_);
  if (closing_ && !drain_) return;
  queue_.push_back(wire::message(msg));
  pump();
}

void ChannelStream::request_sync(std::int64_t from, std::size_t limit) {
  std::lock_guard lock(mu_);
  // A newer request replaces one not yet answered: the client wants the
  // log from its latest position.
  sync_pending_ = true;
  sync_from_ = std::max<std::int64_t>(from, 0);
  sync_limit_ = limit == 0 ? limits_.page_patches : std::min(limit, limits_.page_patches);
  maybe_read();
}

bool ChannelStream::patch_sent(const api::Patch& patch) {
  std::lock_guard lock(mu_);
  ++unacked_;
  in_flight_.emplace(patch.id(), patch.client_id());
  paused_ = !flow_open();
  return !paused_;
}

void ChannelStream::patch_answered(const api::Ack& ack) {
  std::lock_guard lock(mu_);
  --unacked_;
  if (auto it = in_flight_.find(ack.patch_id()); it != in_flight_.end()) in_flight_.erase(it);
  if (ack.status() == api::Ack::ACCEPTED && ack.server_version() > cursor_.position()) {
    own_versions_.insert(ack.server_version());
  }
  if (!(closing_ && !drain_)) {
    engine::count_ack(ack);
    api::SessionResponse msg;
    *msg.mutable_ack() = ack;
    timed(wire::message(msg), Out::Timed::kAck, Clock::now());
  }
  pump();
}

bool ChannelStream::is_own(const store::StoredPatch& p) const {
  if (own_versions_.count(p.version)) return true;
  auto [first, last] = in_flight_.equal_range(p.id);
  for (auto it = first; it != last; ++it) {
    if (it->second == p.client_id) return true;
  }
  return false;
}

bool ChannelStream::flow_open() const {
  return unacked_ < limits_.unacked_patches && queue_.size() < limits_.unacked_patches;
}

void ChannelStream::maybe_resume() {
  if (paused_ && !closing_ && writer_ != nullptr && flow_open()) {
    paused_ = false;
    writer_->resume_reading();
  }
}

void ChannelStream::touch() {
  std::lock_guard lock(mu_);
  last_activity_ = Clock::now();
}

void ChannelStream::close(const grpc::Status& status, bool drain) {
  std::lock_guard lock(mu_);
  if (closing_) return;
  closing_ = true;
  drain_ = drain;
  status_ = status;
  if (!drain) {
    // Keep the message in flight (gRPC still owns it); drop the rest.
    drop_unwritten();
  }
  pump();
}

void ChannelStream::detach() {
  std::lock_guard lock(mu_);
  writer_ = nullptr;
  closing_ = true;
}

void ChannelStream::enqueue_patch(const store::StoredPatch& p) {
  auto bytes = std::make_shared<const std::string>(wire::with_version(p.body, p.version));
  observe::Metrics::get().deliveries.Increment();
  queue_.push_back(kind_ == Kind::kSession ? wire::session_broadcast(bytes) : wire::watch_patch(bytes));
}

void ChannelStream::on_commit(const std::vector<engine::Published>& patches) {
  std::lock_guard lock(mu_);
  if (closing_) return;
  const auto now = Clock::now();  // once for the commit's patches, not per patch
  for (const engine::Published& pub : patches) {
    const std::int64_t v = pub.patch->server_version();
    const bool room = queue_.size() < limits_.queue_messages;
    if (mode_ != Mode::kLive || !room) {
      // Delivered later, from the log, through the same cursor.
      if (mode_ == Mode::kLive) overflowed_ = true;
      cursor_.note_head(v);
      continue;
    }
    if (cursor_.advance(v) && pub.origin != id()) {
      observe::Metrics::get().deliveries.Increment();
      timed(kind_ == Kind::kSession ? wire::session_broadcast(pub.encoded) : wire::watch_patch(pub.encoded),
            Out::Timed::kBroadcast, now);
    }
  }
  maybe_read();
  pump();
}

void ChannelStream::on_remote_head(std::int64_t head) {
  std::lock_guard lock(mu_);
  cursor_.note_head(head);
  maybe_read();
}

void ChannelStream::set_expiry(std::optional<std::chrono::system_clock::time_point> expires) {
  std::lock_guard lock(mu_);
  expires_ = expires;
}

void ChannelStream::after_history(std::function<void()> f) {
  std::lock_guard lock(mu_);
  if (mode_ == Mode::kLive) return f();
  after_history_ = std::move(f);
}

void ChannelStream::went_live() {
  mode_ = Mode::kLive;
  if (after_history_) std::exchange(after_history_, nullptr)();
}

bool ChannelStream::offer(api::SessionResponse msg) {
  std::lock_guard lock(mu_);
  if (closing_ || queue_.size() >= limits_.queue_messages) return false;
  queue_.push_back(wire::message(msg));
  pump();
  return true;
}

std::int64_t ChannelStream::delivered() const {
  std::lock_guard lock(mu_);
  return cursor_.position();
}

void ChannelStream::tick(Clock::time_point now) {
  if (on_tick_) on_tick_(delivered());
  std::lock_guard lock(mu_);
  if (closing_) return;
  if (expires_ && std::chrono::system_clock::now() > *expires_) {
    closing_ = true;
    drain_ = false;
    status_ = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                           "the token expired; send `refresh` with a new token before the old one "
                           "expires, or reconnect with a new token");
    drop_unwritten();
    pump();
    return;
  }
  if (kind_ != Kind::kSession) return;
  if (limits_.idle_timeout.count() > 0 && now - last_activity_ > limits_.idle_timeout) {
    closing_ = true;
    drain_ = false;
    status_ = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                           "no message from the client for " +
                               std::to_string(limits_.idle_timeout.count() / 1000) +
                               " s; send heartbeats to keep a session open");
    drop_unwritten();
    pump();
    return;
  }
  if (mode_ != Mode::kPending && now - last_heartbeat_ >= limits_.heartbeat_interval) {
    last_heartbeat_ = now;
    api::SessionResponse msg;
    msg.mutable_heartbeat();
    queue_.push_back(wire::message(msg));
    pump();
  }
}

void ChannelStream::shut_down() {
  close(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                     "the server is shutting down; reconnect from your last version"),
        true);
}

void ChannelStream::on_deleted() {
  std::lock_guard lock(mu_);
  if (closing_) return;
  closing_ = true;
  drain_ = false;
  status_ = grpc::Status(grpc::StatusCode::NOT_FOUND,
                         "channel " + channel_ + " was deleted; a new write creates it again from version 1");
  drop_unwritten();
  pump();
}

void ChannelStream::maybe_read() {
  if (reading_ || closing_ || mode_ == Mode::kPending) return;
  if (queue_.size() >= limits_.queue_messages / 2) return;  // on_write_done calls again
  if (snapshot_due_) {
    snapshot_due_ = false;
    start_snapshot(ReadKind::kCatchUp);
    return;
  }
  ReadKind kind;
  std::int64_t after;
  std::size_t limit = limits_.page_patches;
  std::size_t bytes = limits_.page_bytes;
  if (sync_pending_) {
    kind = ReadKind::kSync;
    after = sync_from_;
    limit = sync_limit_;
  } else if (mode_ == Mode::kHistory || cursor_.behind()) {
    kind = ReadKind::kCatchUp;
    after = cursor_.position();
    if (mode_ == Mode::kHistory) {
      // One query for several pages: a client far behind pays the
      // database's per-query cost once per kPagesPerRead pages.
      limit *= kPagesPerRead;
      bytes *= kPagesPerRead;
    }
  } else {
    return;
  }
  start_read(kind, after, limit, bytes);
}

void ChannelStream::start_read(ReadKind kind, std::int64_t after, std::size_t limit, std::size_t bytes) {
  reading_ = true;
  auto& metrics = observe::Metrics::get();
  metrics.log_reads.Increment();
  if (kind == ReadKind::kCatchUp && overflowed_) metrics.catchup_reads.Increment();
  readers_.submit([self = shared_from_this(), kind, after, limit, bytes](store::ChangeLog& log) {
    // The channel is fixed once the stream has started.
    self->on_page(kind, after, log.read(self->channel(), after, limit, bytes));
  });
}

void ChannelStream::fail_read(const absl::Status& status) {
  spdlog::warn("log read for a subscriber failed: {}", std::string(status.message()));
  closing_ = true;
  status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                         "could not read the channel's log; reconnect from your last version");
  pump();
}

void ChannelStream::on_page(ReadKind kind, std::int64_t after, absl::StatusOr<store::Page> page) {
  std::lock_guard lock(mu_);
  reading_ = false;
  if (closing_) return;
  if (!page.ok()) return fail_read(page.status());
  if (page->compacted(after) || after > page->head) {
    cursor_.note_head(page->head);
    start_snapshot(kind);
    return;
  }
  if (kind == ReadKind::kSync) {
    // Pages are spliced from the stored bytes: no patch is decoded here.
    wire::PageBuilder state;
    for (const auto& p : page->patches) state.add(p.body, p.version);
    observe::Metrics::get().deliveries.Increment(static_cast<double>(page->patches.size()));
    const std::int64_t last = page->patches.empty() ? std::max(sync_from_, std::int64_t{0})
                                                    : page->patches.back().version;
    sync_pending_ = page->has_more;
    sync_from_ = last;
    queue_.push_back(state.finish(page->patches.empty() ? std::min(last, page->head) : last, page->has_more, true));
  } else {
    cursor_.note_head(page->head);
    if (mode_ == Mode::kHistory && !sync_pending_ && page->has_more && !page->patches.empty() &&
        queue_.size() < limits_.queue_messages / 2) {
      // Ask for the next pages before cutting these: the database reads
      // them while this thread builds and queues the current ones. Their
      // on_page waits for mu_, so pages still queue in order.
      start_read(ReadKind::kCatchUp, page->patches.back().version, limits_.page_patches * kPagesPerRead,
                 limits_.page_bytes * kPagesPerRead);
    }
    if (mode_ == Mode::kHistory) {
      // Cut into pages of at most page_patches patches / page_bytes bytes.
      wire::PageBuilder state;
      std::size_t count = 0, size = 0, delivered = 0;
      for (const auto& p : page->patches) {
        // A patch the session sent while its history was still coming is
        // answered by its ack, never echoed back.
        if (!cursor_.advance(p.version) || is_own(p)) continue;
        if (count == limits_.page_patches || size >= limits_.page_bytes) {
          queue_.push_back(state.finish(cursor_.position() - 1, true, false));
          count = size = 0;
        }
        state.add(p.body, p.version);
        ++count, size += p.body.size();
        ++delivered;
      }
      observe::Metrics::get().deliveries.Increment(static_cast<double>(delivered));
      if (!cursor_.behind()) went_live();
      queue_.push_back(state.finish(cursor_.position(), cursor_.behind(), false));
    } else {
      for (const auto& p : page->patches) {
        if (cursor_.advance(p.version) && !is_own(p)) enqueue_patch(p);
      }
      if (!cursor_.behind()) overflowed_ = false;
    }
    own_versions_.erase(own_versions_.begin(), own_versions_.upper_bound(cursor_.position()));
  }
  maybe_read();
  pump();
}

}  // namespace syncd::server
