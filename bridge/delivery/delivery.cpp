#include "delivery/delivery.h"

#include "delivery/pages.h"
#include "observe/bridge_metrics.h"

namespace bridge::delivery {

Delivery::Delivery(Options options, Upstream& upstream, Sink& sink)
    : options_(std::move(options)),
      upstream_(upstream),
      sink_(sink),
      inbox_(options_.queue_limit),
      seq_(options_.since),
      pusher_(options_.channel, options_.max_patch_bytes, seq_, upstream_, sink_),
      requests_(options_.channel, options_.snapshots, options_.queue_limit, upstream_, sink_) {}

void Delivery::stop() {
  stopped_ = true;
  set_behind(false);
  pusher_.stop();
  requests_.stop();
  inbox_.skip();
  buffered_.clear();
}

// ---- The feed ---------------------------------------------------------------

void Delivery::feed_ready() {
  ready_ = true;
  read_history();
}

void Delivery::take_inbox() {
  for (auto& item : inbox_.take()) on_item(std::move(item));
}

void Delivery::fell_behind() {
  if (stopped_) return;
  if (mode_ == Mode::kJoining) {
    // Still reading the log: read it once more, and keep buffering.
    buffered_.clear();
    reread_ = true;
    inbox_.resume();
  } else {
    mode_ = Mode::kBehind;
    set_behind(true);
    rejoin_if_drained();  // else drained() does, once the queue drains
  }
}

void Delivery::feed_done(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
      status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    // The bridge's own token, not the client's: nothing the client can fix.
    return sink_.failed(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "the bridge cannot watch this channel (syncd refused its token); try again later"));
  }
  sink_.failed(status);
}

void Delivery::on_item(upstream::Item item) {
  if (stopped_) return;
  switch (mode_) {
    case Mode::kJoining:
      if (buffered_.size() >= options_.queue_limit) {
        // Too much arrives while the log is read: drop it, read the log again.
        buffered_.clear();
        reread_ = true;
      }
      buffered_.push_back(std::move(item));
      return;
    case Mode::kBehind:
      return;  // read from the log when the client has caught up
    case Mode::kLive: {
      std::vector<Sequencer::Out> outs;
      seq_.patch(std::move(item), outs);
      emit(outs);
      if (sink_.backlog() >= options_.queue_limit) {
        mode_ = Mode::kBehind;
        set_behind(true);
        inbox_.skip();
      }
      return;
    }
  }
}

// ---- Joining ----------------------------------------------------------------

void Delivery::drained() {
  if (stopped_ || sink_.backlog() >= options_.queue_limit / 2) return;
  rejoin_if_drained();
  if (mode_ == Mode::kJoining) read_history();
  requests_.next();
}

// A client behind the feed joins again from its last version once it has
// taken most of what it was sent.
void Delivery::rejoin_if_drained() {
  if (mode_ != Mode::kBehind || sink_.backlog() >= options_.queue_limit / 2) return;
  mode_ = Mode::kJoining;
  buffered_.clear();
  reread_ = false;
  inbox_.resume();
  read_history();
}

// One step of joining: the head when there is no history to send, else a
// page of the log after the client's version. Waits for the feed's origin
// (so the log read covers everything the feed will not deliver) and for
// the client to take what it was sent.
void Delivery::read_history() {
  if (!ready_ || reading_history_ || stopped_ || mode_ != Mode::kJoining) return;
  if (sink_.backlog() >= options_.queue_limit / 2) return;  // drained() calls again
  reading_history_ = true;
  if (first_join_ && !options_.history) {
    api::GetChannelInfoRequest req;
    req.set_channel(options_.channel);
    return upstream_.channel_info(std::move(req), [this](const grpc::Status& status, api::ChannelInfo&& info) {
      on_info(status, info);
    });
  }
  api::GetChangesRequest req;
  req.set_channel(options_.channel);
  req.set_from_version(seq_.cursor());
  if (!first_join_) observe::Metrics::get().catchup_reads.Increment();
  upstream_.get_changes(std::move(req), [this](const grpc::Status& status, api::GetChangesResponse&& page) {
    on_page(status, page);
  });
}

void Delivery::on_info(const grpc::Status& status, const api::ChannelInfo& info) {
  reading_history_ = false;
  if (stopped_) return;
  if (!status.ok()) return sink_.failed(status);
  if (!sink_.admitted()) return;
  first_join_ = false;
  seq_.skip_to(info.head_version());
  sink_.joined(info);
  if (reread_) {
    reread_ = false;
    read_history();
  } else {
    go_live();
  }
}

void Delivery::on_page(const grpc::Status& status, api::GetChangesResponse& page) {
  reading_history_ = false;
  if (stopped_) return;
  // Compacted history, or a client past the head (a channel deleted and
  // recreated): the client gets the channel's state instead.
  const bool ahead = status.ok() && first_join_ && page.patches().empty() && page.version() < seq_.cursor();
  if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE || ahead) {
    reading_history_ = true;
    return options_.snapshots ? read_snapshot() : skip_compacted();
  }
  if (!status.ok()) return sink_.failed(status);
  if (!sink_.admitted()) return;
  bool more = page.has_more();
  if (!more && reread_) {
    reread_ = false;
    more = true;
  }
  if (first_join_) {
    // The client's history, as the protocol's sync_state pages.
    seq_.skip_to(page.version());
    api::SyncState state = history_page(page, more, false);
    sink_.page(state, more);
  } else {
    // Catching up after falling behind: the same frames live delivery sends.
    std::vector<Sequencer::Out> outs;
    for (auto& p : *page.mutable_patches()) seq_.patch(upstream::make_item(std::move(p)), outs);
    emit(outs);
    if (!more && snapshot_open_) {
      // A snapshot sent mid-stream ends like a join's history: with a page
      // saying there is no more, so the client knows its state is whole.
      api::SyncState state;
      state.set_version(page.version());
      sink_.page(state, false);
    }
  }
  if (!more) snapshot_open_ = false;
  if (more) {
    read_history();
  } else {
    go_live();
  }
}

void Delivery::read_snapshot() {
  api::GetSnapshotRequest req;
  req.set_channel(options_.channel);
  upstream_.get_snapshot(std::move(req), [this](const grpc::Status& status, std::vector<api::SnapshotPage>&& pages) {
    on_snapshot(status, pages);
  });
}

void Delivery::on_snapshot(const grpc::Status& status, std::vector<api::SnapshotPage>& pages) {
  reading_history_ = false;
  if (stopped_) return;
  if (!status.ok()) return sink_.failed(status);
  if (pages.empty()) return sink_.failed(grpc::Status(grpc::StatusCode::INTERNAL, "an empty snapshot stream"));
  const std::int64_t version = send_snapshot(sink_, pages, false);
  snapshot_open_ = !first_join_;
  std::vector<Sequencer::Out> outs;
  seq_.restart_at(version, outs);
  emit(outs);
  read_history();  // the log after the snapshot
}

// History compacted with force under a dialect without snapshots (/crdt):
// the client gets what remains, from the horizon on.
void Delivery::skip_compacted() {
  api::GetChannelInfoRequest req;
  req.set_channel(options_.channel);
  upstream_.channel_info(std::move(req), [this](const grpc::Status& status, api::ChannelInfo&& info) {
    reading_history_ = false;
    if (stopped_) return;
    if (!status.ok()) return sink_.failed(status);
    seq_.skip_to(info.compacted_through());
    read_history();
  });
}

void Delivery::go_live() {
  first_join_ = false;
  mode_ = Mode::kLive;
  set_behind(false);
  std::vector<Sequencer::Out> outs;
  for (auto& item : buffered_) seq_.patch(std::move(item), outs);
  buffered_.clear();
  emit(outs);
  pusher_.go();
}

void Delivery::set_behind(bool behind) {
  if (behind == counted_behind_) return;
  counted_behind_ = behind;
  auto& gauge = observe::Metrics::get().behind;
  behind ? gauge.Increment() : gauge.Decrement();
}

void Delivery::emit(std::vector<Sequencer::Out>& outs) {
  auto& deliveries = observe::Metrics::get().deliveries;
  for (const auto& out : outs) {
    if (out.broadcast) deliveries.Increment();
    sink_.deliver(out);
  }
  outs.clear();
}

}  // namespace bridge::delivery
