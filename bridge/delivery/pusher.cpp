#include "delivery/pusher.h"

#include "observe/bridge_metrics.h"

namespace bridge::delivery {

namespace {

api::Ack rejected(const std::string& id, std::int64_t version, std::string code, std::string reason) {
  api::Ack ack;
  ack.set_patch_id(id);
  ack.set_status(api::Ack::REJECTED);
  ack.set_server_version(version);
  ack.set_code(std::move(code));
  ack.set_reason(std::move(reason));
  return ack;
}

}  // namespace

void Pusher::reject_too_large(const std::string& id, const std::string& size) {
  // A rejected ack holds no version: it goes out at once, as syncd's would.
  sink_.deliver(Sequencer::Out{nullptr, rejected(id, seq_.cursor(), "too_large",
                                                 "patch is " + size + " bytes; the limit is " +
                                                     std::to_string(max_patch_bytes_))});
}

void Pusher::submit(api::Patch patch) {
  const std::size_t size = patch.ByteSizeLong();
  if (max_patch_bytes_ > 0 && size > max_patch_bytes_) return reject_too_large(patch.id(), std::to_string(size));
  outbox_.push_back(std::move(patch));
  next();
}

void Pusher::next() {
  if (pushing_ || outbox_.empty() || !live_ || stopped_) return;
  api::PushRequest req;
  req.set_channel(channel_);
  std::vector<std::string> ids;
  std::size_t bytes = 0;
  while (!outbox_.empty() && req.patches_size() < kMaxPushPatches &&
         (req.patches_size() == 0 || bytes + outbox_.front().ByteSizeLong() <= kMaxPushBytes)) {
    bytes += outbox_.front().ByteSizeLong();
    ids.push_back(outbox_.front().id());
    seq_.sent(ids.back());
    *req.add_patches() = std::move(outbox_.front());
    outbox_.pop_front();
  }
  pushing_ = true;
  upstream_.push(std::move(req), [this, ids = std::move(ids)](const grpc::Status& status,
                                                              api::PushResponse&& response) {
    on_pushed(status, response, ids);
  });
}

void Pusher::on_pushed(const grpc::Status& status, const api::PushResponse& response,
                       const std::vector<std::string>& ids) {
  pushing_ = false;
  if (stopped_) return;
  std::vector<Sequencer::Out> outs;
  const bool forbidden = status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
  if (status.ok() && response.acks_size() == static_cast<int>(ids.size())) {
    for (const auto& ack : response.acks()) {
      if (ack.status() == api::Ack::ACCEPTED) observe::Metrics::get().patches_accepted.Increment();
      if (ack.code() == "rate_limited") observe::Metrics::get().rate_limited.Increment();
      seq_.answered(ack, outs);
    }
  } else if (forbidden) {
    // No write access to the channel at all: each patch is refused, as a
    // patch-level problem (the socket may still read).
    for (const auto& id : ids) seq_.answered(rejected(id, seq_.cursor(), "forbidden", status.error_message()), outs);
  } else {
    for (const auto& id : ids) seq_.abandoned(id, outs);
  }
  emit(outs);
  if (!status.ok() && !forbidden) {
    // The push's outcome is unknown (some of its patches may be stored).
    // Closing is what every client understands; an error frame alone would
    // leave those patches pending on an open socket.
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) return sink_.failed(status);
    return sink_.failed(grpc::Status(status.error_code(),
                                     status.error_message() + " (" + std::to_string(ids.size()) +
                                         " patches unanswered; reconnect and resend them: duplicates are answered "
                                         "`ignored`)"));
  }
  if (outbox_.size() < kMaxOutbox / 2) sink_.outbox_room();
  next();
}

void Pusher::emit(std::vector<Sequencer::Out>& outs) {
  for (const auto& out : outs) sink_.deliver(out);
}

}  // namespace bridge::delivery
