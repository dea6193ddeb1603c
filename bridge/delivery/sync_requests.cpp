#include "delivery/sync_requests.h"

#include <algorithm>

#include "delivery/pages.h"

namespace bridge::delivery {

void SyncRequests::request(std::int64_t from, int limit) {
  pending_ = true;
  from_ = std::max<std::int64_t>(from, 0);
  limit_ = limit;
  next();
}

void SyncRequests::next() {
  if (running_ || !pending_ || stopped_) return;
  if (sink_.backlog() >= queue_limit_ / 2) return;  // called again once the queue drains
  pending_ = false;
  running_ = true;
  api::GetChangesRequest req;
  req.set_channel(channel_);
  req.set_from_version(from_);
  req.set_limit(limit_);
  upstream_.get_changes(std::move(req), [this](const grpc::Status& status, api::GetChangesResponse&& page) {
    on_page(status, page);
  });
}

void SyncRequests::on_page(const grpc::Status& status, api::GetChangesResponse& page) {
  running_ = false;
  if (stopped_) return;
  if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
    running_ = true;
    return snapshots_ ? read_snapshot() : skip_compacted();
  }
  if (!status.ok()) return fail(status);
  // The rest follows page by page, unless a newer request replaced it.
  const bool continues = page.has_more() && !pending_;
  if (continues) {
    pending_ = true;
    from_ = page.version();
  }
  api::SyncState state = history_page(page, page.has_more(), true);
  sink_.page(state, continues);
  next();
}

void SyncRequests::read_snapshot() {
  api::GetSnapshotRequest req;
  req.set_channel(channel_);
  upstream_.get_snapshot(std::move(req), [this](const grpc::Status& status, std::vector<api::SnapshotPage>&& pages) {
    running_ = false;
    if (stopped_) return;
    if (!status.ok()) return fail(status);
    if (pages.empty()) return fail(grpc::Status(grpc::StatusCode::INTERNAL, "an empty snapshot stream"));
    const std::int64_t version = send_snapshot(sink_, pages, true);
    if (!pending_) {  // the log after V, unless a newer request replaced this one
      pending_ = true;
      from_ = version;
    }
    next();
  });
}

// The log was compacted with force under a dialect without snapshots: what
// remains, from the horizon on.
void SyncRequests::skip_compacted() {
  api::GetChannelInfoRequest req;
  req.set_channel(channel_);
  upstream_.channel_info(std::move(req), [this](const grpc::Status& status, api::ChannelInfo&& info) {
    running_ = false;
    if (stopped_) return;
    if (!status.ok()) return sink_.failed(status);
    from_ = std::max(from_, info.compacted_through());
    pending_ = true;
    next();
  });
}

void SyncRequests::fail(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) return sink_.failed(status);
  sink_.request_failed(status);
}

}  // namespace bridge::delivery
