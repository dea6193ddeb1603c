// ChannelStream's snapshots: when the versions a client needs were
// compacted away (or it asks from past the head), it gets the channel's
// state at one version V instead, marked so it replaces its own, then the
// log after V (see channel_stream.h).
#include "observe/metrics.h"
#include "server/channel_stream.h"
#include "server/wire.h"

namespace syncd::server {

void ChannelStream::start_snapshot(ReadKind kind) {
  reading_ = true;
  observe::Metrics::get().snapshot_reads.Increment();
  readers_.submit([self = shared_from_this(), kind](store::ChangeLog& log) {
    self->on_snapshot(kind, log.snapshot(self->channel()));
  });
}

void ChannelStream::on_snapshot(ReadKind kind, absl::StatusOr<store::Snapshot> snapshot) {
  std::lock_guard lock(mu_);
  reading_ = false;
  if (closing_) return;
  if (!snapshot.ok()) return fail_read(snapshot.status());
  cursor_.note_head(snapshot->version);
  enqueue_snapshot(kind, *snapshot);
  if (kind == ReadKind::kSync) {
    // The tail after the snapshot follows as requested pages.
    sync_from_ = snapshot->version;
    sync_pending_ = cursor_.known_head() > snapshot->version;
  } else {
    cursor_.restart_at(snapshot->version);
    own_versions_.erase(own_versions_.begin(), own_versions_.upper_bound(snapshot->version));
    if (!cursor_.behind()) overflowed_ = false;
    // A Watch streams patches, not pages: it goes back to that mode and
    // reads the tail from the log.
    if (kind_ == Kind::kWatch || !cursor_.behind()) went_live();
  }
  maybe_read();
  pump();
}

void ChannelStream::enqueue_snapshot(ReadKind kind, const store::Snapshot& snapshot) {
  const std::int64_t v = snapshot.version;
  if (kind_ == Kind::kWatch) {
    queue_.push_back(wire::watch_patch(std::make_shared<const std::string>(wire::snapshot_reset(v, snapshot.patches.size()))));
    for (const auto& p : snapshot.patches) {
      queue_.push_back(wire::watch_patch(std::make_shared<const std::string>(wire::snapshot_patch(p.body, v))));
    }
    return;
  }
  // Pages of the state, all at version v; the first one says "snapshot".
  // has_more stays true while the tail after v is still to come as pages
  // (history, sync requests); a live stream gets the tail as broadcasts.
  const bool requested = kind == ReadKind::kSync;
  const bool tail = (requested || mode_ == Mode::kHistory) && cursor_.known_head() > v;
  wire::PageBuilder page;
  std::size_t count = 0, size = 0;
  bool first = true;
  for (const auto& p : snapshot.patches) {
    if (count == limits_.page_patches || size >= limits_.page_bytes) {
      queue_.push_back(page.finish(v, true, requested, first));
      first = false;
      count = size = 0;
    }
    page.add(p.body, v);
    ++count, size += p.body.size();
  }
  queue_.push_back(page.finish(v, tail, requested, first));
}

}  // namespace syncd::server
