#include "socketio/sio_channel.h"

#include "codec/engineio.h"
#include "codec/socketio_codec.h"
#include "socketio/eio_session.h"
#include "socketio/sio_socket.h"
#include "socket/close_codes.h"

namespace bridge::socketio {

SioChannel::SioChannel(SioSocket& socket, std::string channel, std::optional<std::int64_t> since, bool recovering)
    : socket_(socket), recovering_(recovering), encoder_(channel), tick_timer_(socket.eio().strand()) {
  BridgeContext& ctx = socket.eio().context();
  delivery::Options options;
  options.channel = std::move(channel);
  options.since = since.value_or(0);
  options.history = since.has_value();
  options.snapshots = true;
  options.queue_limit = ctx.limits.queue_messages;
  options.max_patch_bytes = ctx.limits.parse.max_patch_bytes;
  delivery_.emplace(std::move(options), socket.upstream(), static_cast<delivery::Sink&>(*this));
  link_.emplace(*delivery_, socket.post());
  if (ctx.presence) {
    presence_ = std::make_shared<SocketPresence>(*ctx.presence, delivery_->channel(), socket.post(),
                                                 static_cast<SocketPresence::Client*>(this));
  }
}

SioChannel::~SioChannel() {
  if (presence_) presence_->leave();  // however the channel ends, its member goes
}

void SioChannel::set_presence(std::optional<std::string> client_id, bool want) {
  if (client_id) client_id_ = std::move(*client_id);
  if (presence_ && want) presence_->want();
}

void SioChannel::start(std::optional<std::int64_t> ack) {
  if (presence_) {
    // Without authentication, listed at once (see BridgeContext::list_at_open).
    if (socket_.eio().context().list_at_open) presence_->join(client_id_, "socketio", socket_.authorization());
    tick();
  }
  if (ack) join_acks_.push_back(*ack);
  socket_.eio().context().stats.socket_opened(delivery_->channel());
  counted_ = true;
  // Subscribed through a pointer that owns the session: while the feed
  // calls the link, this channel is alive.
  feed_ = socket_.eio().context().feeds->subscribe(
      delivery_->channel(), std::shared_ptr<upstream::FeedListener>(socket_.eio().shared_from_this(), &*link_));
}

void SioChannel::rejoin(std::optional<std::int64_t> ack) {
  if (!ack) return;
  if (join_acks_.size() >= kMaxWaitingJoins) {
    return socket_.refuse(ack, "rate_limited", "this channel's join is still being answered; wait for it");
  }
  join_acks_.push_back(*ack);
  if (live_) answer_joins(delivery_->cursor());
}

void SioChannel::stop() {
  stopped_ = true;
  tick_timer_.cancel();
  feed_.reset();
  if (presence_) presence_->leave();
  delivery_->stop();
  if (counted_) socket_.eio().context().stats.socket_closed(delivery_->channel());
  counted_ = false;
}

std::size_t SioChannel::backlog() const { return socket_.eio().backlog(); }

bool SioChannel::admitted() {
  if (socket_.admit_subject()) {
    if (presence_) {
      presence_->join(client_id_, "socketio", socket_.authorization());  // unless listed at once already
      presence_->admitted();
    }
    return true;
  }
  failed(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "this token's subject already has " +
                          std::to_string(socket_.eio().context().per_subject.limit()) +
                          " sockets open (the bridge's --max-sockets-per-subject); close one first"));
  return false;
}

void SioChannel::presence_error(const std::string& code, const std::string& message) {
  if (stopped_) return;  // the join's own refusal has said it
  socket_.refuse(std::nullopt, code, message, delivery_->channel());
}

void SioChannel::presence_frame(presence::Frame frame) {
  if (stopped_) return;
  // Bounded like the JSON protocol's: past the queue limit the frames are
  // dropped, and the whole list follows at the next tick.
  if (socket_.eio().backlog() >= socket_.eio().context().limits.queue_messages) return presence_->lost();
  socket_.deliver(encoder_.presence(*frame));
}

void SioChannel::tick() {
  tick_timer_.expires_after(std::chrono::seconds(1));
  // The session owns this channel: while it lives, so does the channel.
  tick_timer_.async_wait([this, session = std::weak_ptr<EioSession>(socket_.eio().shared_from_this())](
                             const boost::system::error_code& ec) {
    const auto alive = session.lock();
    if (ec || !alive || stopped_) return;
    presence_->tick(delivery_->position());
    tick();
  });
}

std::optional<std::pair<std::string, std::string>> SioChannel::presence_event(codec::PresenceEvent& event) {
  if (!presence_) return std::pair<std::string, std::string>("unavailable", "this bridge runs without presence");
  if (auto* update = std::get_if<api::PresenceUpdate>(&event.what)) return presence_->update(update->state());
  if (auto* applied = std::get_if<api::Applied>(&event.what)) {
    presence_->applied(applied->version());
  } else if (std::holds_alternative<codec::PresenceRequest>(event.what)) {
    presence_->request();
  } else {
    presence_->want();
  }
  return std::nullopt;
}

void SioChannel::answer_joins(std::int64_t version) {
  for (std::int64_t ack : join_acks_) {
    socket_.send(dialect::frame(codec::sio_ack(ack, codec::joined_json(delivery_->channel(), version))));
  }
  join_acks_.clear();
}

void SioChannel::joined(const api::ChannelInfo& info) {
  live_ = true;
  answer_joins(info.head_version());
  if (presence_) presence_->history_sent();
}

void SioChannel::page(api::SyncState& state, bool continues) {
  if (state.snapshot()) socket_.deliver(encoder_.reset(state.version()));
  socket_.deliver(encoder_.page(state, continues));
  if (presence_) {
    presence_->delivered(state.version());
    if (!continues) presence_->history_sent();
  }
  if (!state.requested() && !continues && !live_) {
    live_ = true;
    answer_joins(state.version());
  }
}

void SioChannel::deliver(const Sequencer::Out& out) {
  if (out.broadcast) {
    if (presence_) presence_->delivered(out.broadcast->version);
    return socket_.deliver(encoder_.broadcast(*out.broadcast));
  }
  socket_.acks().answer(delivery_->channel(), out.ack.patch_id(), *encoder_.ack(out.ack));
}

void SioChannel::request_failed(const grpc::Status& status) {
  socket_.send(encoder_.error(ending_for(status.error_code()).code, status.error_message()));
}

void SioChannel::failed(const grpc::Status& status) {
  if (failed_) return;
  failed_ = true;
  const char* code = ending_for(status.error_code()).code;
  stop();
  if (live_ || recovering_) return socket_.fail(status);
  // A join the client asked for: it hears why, and the socket stays.
  if (join_acks_.empty()) socket_.refuse(std::nullopt, code, status.error_message(), delivery_->channel());
  for (std::int64_t ack : join_acks_) {
    socket_.send(dialect::frame(codec::sio_ack(ack, codec::failure_json(code, status.error_message()))));
  }
  join_acks_.clear();
}

}  // namespace bridge::socketio
