#include "server/watch_call.h"

#include "server/caller.h"
#include "server/wire.h"

namespace syncd::server {

WatchCall::WatchCall(Context& ctx, grpc::CallbackServerContext* call, const grpc::ByteBuffer& encoded)
    : ctx_(ctx),
      stream_(std::make_shared<ChannelStream>(ChannelStream::Kind::kWatch, ctx.readers, ctx.stream,
                                              this)) {
  api::WatchRequest request;
  if (!wire::parse(encoded, &request)) {
    stream_->close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the request is not a sync.v1.WatchRequest"),
                   false);
    return;
  }
  const std::string channel = channel_or_default(request.channel());
  if (ctx_.stopping) {
    stream_->close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; retry"),
                   false);
    return;
  }
  if (!graph::valid_channel_name(channel)) {
    stream_->close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "channel names are 1-128 characters of [A-Za-z0-9._:-]"),
                   false);
    return;
  }
  if (request.from_version() < 0) {
    stream_->close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "from_version must be >= 0"), false);
    return;
  }
  auto who = authenticate(ctx_, call);
  if (auto* status = std::get_if<grpc::Status>(&who)) {
    stream_->close(*status, false);
    return;
  }
  const auto& principal = std::get<auth::Principal>(who);
  if (!principal.can_read(channel)) {
    stream_->close(forbidden(principal, "read", channel), false);
    return;
  }
  auto place = ctx_.caps.admit(StreamCaps::Kind::kWatch, principal, call);
  if (auto* status = std::get_if<grpc::Status>(&place)) {
    stream_->close(*status, false);
    return;
  }
  place_ = std::get<auth::KeyedCap::Hold>(std::move(place));
  stream_->set_expiry(principal.expires);
  stream_->bind(channel);
  ctx_.hub.add(channel, stream_);
  ctx_.readers.submit([stream = stream_, from = request.from_version(),
                       no_history = request.no_history()](store::ChangeLog& log) {
    auto state = log.channel_state(stream->channel());
    if (!state.ok()) {
      stream->close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the database is unavailable; retry"),
                    false);
      return;
    }
    stream->start(no_history ? state->head : from, state->head);
  });
}

void WatchCall::OnWriteDone(bool ok) { stream_->on_write_done(ok); }

void WatchCall::OnCancel() {
  stream_->close(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"), false);
}

void WatchCall::OnDone() {
  place_ = {};
  stream_->detach();
  if (!stream_->channel().empty()) ctx_.hub.remove(stream_->channel(), stream_.get());
  delete this;
}

}  // namespace syncd::server
