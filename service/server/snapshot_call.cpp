#include "server/snapshot_call.h"

#include "server/caller.h"

namespace syncd::server {

SnapshotCall::SnapshotCall(Context& ctx, grpc::CallbackServerContext* call, const api::GetSnapshotRequest& request)
    : ctx_(ctx),
      limit_(request.limit() <= 0 ? ctx.stream.page_patches
                                  : std::min<std::size_t>(static_cast<std::size_t>(request.limit()), ctx.stream.page_patches)) {
  const std::string channel = channel_or_default(request.channel());
  auto who = admit_call(ctx_, call, channel, "read");
  if (auto* status = std::get_if<grpc::Status>(&who)) {
    Finish(*status);
    return;
  }
  if (request.limit() < 0) {
    Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "limit must be >= 0"));
    return;
  }
  ctx_.readers.submit([this, channel](store::ChangeLog& log) { on_snapshot(log.snapshot(channel)); });
}

void SnapshotCall::on_snapshot(absl::StatusOr<store::Snapshot> snapshot) {
  if (!snapshot.ok()) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "could not read the snapshot (" +
                                                           std::string(snapshot.status().message()) + "); retry"));
    return;
  }
  std::lock_guard lock(mu_);
  snapshot_ = *std::move(snapshot);
  write_next();
}

void SnapshotCall::write_next() {
  page_.Clear();
  page_.set_version(snapshot_.version);
  page_.set_compacted_through(snapshot_.compacted_through);
  std::size_t bytes = 0;
  while (next_ < snapshot_.patches.size() && static_cast<std::size_t>(page_.patches_size()) < limit_ &&
         bytes < ctx_.stream.page_bytes) {
    const store::StoredPatch& p = snapshot_.patches[next_++];
    p.decode(page_.add_patches());  // built by the store from valid messages
    bytes += p.body.size();
  }
  page_.set_has_more(next_ < snapshot_.patches.size());
  StartWrite(&page_);
}

void SnapshotCall::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  if (!ok) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    return;
  }
  if (next_ < snapshot_.patches.size()) {
    write_next();
  } else {
    snapshot_ = {};
    Finish(grpc::Status::OK);
  }
}

void SnapshotCall::OnDone() { delete this; }

}  // namespace syncd::server
