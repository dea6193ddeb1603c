#include "server/session_call.h"

#include <spdlog/spdlog.h>

#include "server/caller.h"
#include "server/wire.h"

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
  auto who = authenticate(ctx_, call);
  if (auto* status = std::get_if<grpc::Status>(&who)) {
    stream_->close(*status, false);
    return;
  }
  principal_ = std::get<auth::Principal>(std::move(who));
  auto place = ctx_.caps.admit(StreamCaps::Kind::kSession, principal_, call);
  if (auto* status = std::get_if<grpc::Status>(&place)) {
    stream_->close(*status, false);
    return;
  }
  place_ = std::get<auth::KeyedCap::Hold>(std::move(place));
  if (principal_.authenticated()) stream_->set_expiry(principal_.expires);
  StartRead(&encoded_);
}

void SessionCall::OnReadDone(bool ok) {
  if (!ok) {
    // The client finished sending: answer what it sent, then end the call.
    stream_->close(grpc::Status::OK, true);
    return;
  }
  stream_->touch();
  if (!wire::parse(encoded_, &request_)) {
    stream_->close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "a message does not decode as sync.v1.SessionRequest"),
                   false);
    return;
  }
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
      // Filled before the stream records it, so its echo is recognised.
      if (principal_.authenticated() && request_.patch().client_id().empty()) {
        request_.mutable_patch()->set_client_id(principal_.subject);
      }
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
    case api::SessionRequest::kRefresh:
      refresh(request_.refresh().token());
      break;
    case api::SessionRequest::kPresenceUpdate:
      if (!opened_) return refuse_unopened();
      update_presence(request_.presence_update());
      break;
    case api::SessionRequest::kApplied:
      if (!opened_) return refuse_unopened();
      if (request_.applied().version() < 0) {
        send_error("invalid_message", "applied.version must be >= 0");
      } else {
        presence_->applied(request_.applied().version());
      }
      break;
    case api::SessionRequest::KIND_NOT_SET:
      send_error("unknown_type",
                 "the message holds none of open, patch, sync_request, heartbeat, refresh, presence_update, applied");
      break;
  }
  if (keep_reading) StartRead(&encoded_);
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
  if (!principal_.can_read(channel)) {
    stream_->close(forbidden(principal_, "read", channel), false);
    return;
  }
  if (!join_presence(channel, open)) return;
  opened_ = true;
  stream_->bind(channel, open.batch());
  // Join the hub before reading the head, so that no commit falls between.
  ctx_.hub.add(channel, stream_);
  std::shared_ptr<SessionPresence> watcher = open.presence() ? presence_ : nullptr;
  ctx_.readers.submit([stream = stream_, open, watcher](store::ChangeLog& log) {
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
    opened->set_compacted_through(state->compacted_through);
    stream->send(std::move(msg));
    stream->start(open.no_history() ? state->head : open.from_version(), state->head);
    // The list follows the history pages.
    if (watcher) stream->after_history([watcher] { watcher->watch(); });
  });
}

bool SessionCall::join_presence(const std::string& channel, const api::OpenChannel& open) {
  std::optional<std::string> error = client_id_error(open.client_id());
  if (!error && principal_.authenticated() && !open.client_id().empty() && open.client_id() != principal_.subject) {
    error = "client_id must be empty or the token's subject \"" + principal_.subject + "\"";
  }
  if (!error && open.has_presence_state()) error = presence_state_error(open.presence_state());
  if (error) {
    stream_->close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, *error), false);
    return false;
  }
  api::PresenceMember member;
  member.set_connection_id(ctx_.presence.next_id());
  member.set_client_id(open.client_id().empty() ? principal_.subject : open.client_id());
  member.set_subject(principal_.subject);
  member.set_transport("grpc");
  *member.mutable_state() = open.presence_state();
  presence_ = std::make_shared<SessionPresence>(ctx_.presence, channel, member.connection_id(), stream_);
  ctx_.presence.connect(channel, std::move(member));
  stream_->on_tick([presence = presence_](std::int64_t delivered) { presence->tick(delivered); });
  return true;
}

void SessionCall::update_presence(const api::PresenceUpdate& update) {
  if (!update_rate_.admit()) {
    return send_error("rate_limited", "more than " + std::to_string(static_cast<int>(UpdateRate::kPerSecond)) +
                                          " presence updates a second; send the latest state less often");
  }
  if (auto error = presence_state_error(update.state())) return send_error("invalid_message", *error);
  presence_->set_state(update.state());
}

void SessionCall::refresh(const std::string& token) {
  if (!ctx_.verifier.enabled()) {
    send_error("invalid_message", "this server has authentication off; refresh is not needed");
    return;
  }
  auto who = authenticate_token(ctx_, token);
  if (auto* status = std::get_if<grpc::Status>(&who)) {
    stream_->close(*status, false);
    return;
  }
  auto fresh = std::get<auth::Principal>(std::move(who));
  if (fresh.subject != principal_.subject) {
    stream_->close(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                "a refreshed token must name the same subject (\"" + principal_.subject +
                                    "\"); open a new session for another"),
                   false);
    return;
  }
  if (opened_ && !fresh.can_read(stream_->channel())) {
    stream_->close(forbidden(fresh, "read", stream_->channel()), false);
    return;
  }
  principal_ = std::move(fresh);
  stream_->set_expiry(principal_.expires);
}

void SessionCall::submit(api::Patch patch) {
  auto rejection = admit_patch(ctx_, principal_, stream_->channel(), patch);
  if (!rejection) rejection = graph::check_shape(patch, ctx_.limits);
  if (rejection) {
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
  place_ = {};
  if (presence_) presence_->leave();
  stream_->detach();
  if (!stream_->channel().empty()) ctx_.hub.remove(stream_->channel(), stream_.get());
  delete this;
}

}  // namespace syncd::server
