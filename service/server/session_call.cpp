#include "server/session_call.h"

#include <spdlog/spdlog.h>

namespace syncd::server {

SessionCall::SessionCall(Context& ctx, grpc::CallbackServerContext* call)
    : ctx_(ctx),
      stream_(std::make_shared<ChannelStream>(ChannelStream::Kind::kSession, ctx.readers,
                                              ctx.stream, this)) {
  if (ctx_.stopping) {
    stream_->close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; retry"),
                   false);
    return;
  }
  StartRead(&request_);
}

void SessionCall::OnReadDone(bool ok) {
  if (!ok) {
    // The client finished sending: answer what it sent, then end the call.
    stream_->close(grpc::Status::OK, true);
    return;
  }
  stream_->touch();
  bool keep_reading = true;
  switch (request_.kind_case()) {
    case api::SessionRequest::kOpen:
      if (opened_) {
        send_error("invalid_message", "the session is already open; open another session for another channel");
      } else {
        open(request_.open());
        if (!opened_) return;  // refused; the stream is closing
      }
      break;
    case api::SessionRequest::kPatch:
      if (!opened_) return refuse_unopened();
      keep_reading = stream_->patch_sent(request_.patch());
      submit(std::move(*request_.mutable_patch()));
      break;
    case api::SessionRequest::kSyncRequest:
      if (!opened_) return refuse_unopened();
      stream_->request_sync(request_.sync_request().from_version(),
                            static_cast<std::size_t>(std::max(0, request_.sync_request().limit())));
      break;
    case api::SessionRequest::kHeartbeat:
      break;
    case api::SessionRequest::KIND_NOT_SET:
      send_error("unknown_type", "the message holds none of open, patch, sync_request, heartbeat");
      break;
  }
  if (keep_reading) StartRead(&request_);
}

void SessionCall::refuse_unopened() {
  stream_->close(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              "the first message of a session must be `open`"),
                 false);
}

void SessionCall::open(const api::OpenChannel& open) {
  const std::string channel = channel_or_default(open.channel());
  if (!graph::valid_channel_name(channel)) {
    stream_->close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "channel names are 1-128 characters of [A-Za-z0-9._:-]"),
                   false);
    return;
  }
  if (open.from_version() < 0) {
    stream_->close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "from_version must be >= 0"), false);
    return;
  }
  opened_ = true;
  stream_->bind(channel);
  // Join the hub before reading the head, so that no commit falls between.
  ctx_.hub.add(channel, stream_);
  ctx_.readers.submit([stream = stream_, open](store::ChangeLog& log) {
    auto state = log.channel_state(stream->channel());
    if (!state.ok()) {
      stream->close(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the database is unavailable; retry"),
                    false);
      return;
    }
    api::SessionResponse msg;
    auto* opened = msg.mutable_opened();
    opened->set_channel(stream->channel());
    opened->set_head_version(state->head);
    opened->set_conflict_policy(state->conflict_policy);
    opened->set_server_id(state->server_id);
    stream->send(std::move(msg));
    stream->start(open.no_history() ? state->head : open.from_version(), state->head);
  });
}

void SessionCall::submit(api::Patch patch) {
  if (auto rejection = graph::check_shape(patch, ctx_.limits)) {
    api::Ack ack = engine::refused(patch, rejection->code, rejection->reason);
    stream_->patch_answered(ack);
    return;
  }
  patch.clear_server_version();
  ctx_.committer.submit(
      store::Submission{stream_->channel(), std::move(patch)}, stream_->id(),
      [stream = stream_](const api::Ack& ack, const absl::Status& status) {
        if (!status.ok()) {
          stream->close(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "a commit's outcome is unknown (" + std::string(status.message()) +
                                         "); reconnect and resend your pending patches: "
                                         "duplicates are answered `ignored`"),
                        false);
        }
        stream->patch_answered(ack);
      });
}

void SessionCall::send_error(const std::string& code, const std::string& message) {
  api::SessionResponse msg;
  msg.mutable_error()->set_code(code);
  msg.mutable_error()->set_message(message);
  stream_->send(std::move(msg));
}

void SessionCall::OnWriteDone(bool ok) { stream_->on_write_done(ok); }

void SessionCall::OnCancel() {
  stream_->close(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"), false);
}

void SessionCall::OnDone() {
  stream_->detach();
  if (!stream_->channel().empty()) ctx_.hub.remove(stream_->channel(), stream_.get());
  delete this;
}

}  // namespace syncd::server
