#include "ws/ws_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "dialect/crdt_dialect.h"
#include "dialect/json_dialect.h"
#include "observe/bridge_metrics.h"
#include "socket/close_codes.h"
#include "socket/strand_post.h"
#include "ws/append_text.h"
#include "ws/lean_read.h"

namespace bridge {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

WsSession::WsSession(beast::tcp_stream&& stream, BridgeContext& ctx)
    : ctx_(ctx),
      ws_(std::move(stream)),
      idle_timer_(ws_.get_executor()),
      read_timer_(ws_.get_executor()),
      read_rate_(ctx.limits.read_bytes_per_second, ctx.limits.max_frame_bytes, kMinFrameCost),
      token_(ws_.get_executor(), params_.authorization, [this](const grpc::Status& status) { end_with(status); }) {}

WsSession::~WsSession() {
  if (presence_) presence_->leave();  // however the socket ends, its member goes
}

delivery::Post WsSession::strand_post() { return bridge::strand_post(weak_from_this()); }

void WsSession::run(beast::http::request<beast::http::string_body> req, SocketParams params) {
  params_ = std::move(params);
  if (params_.crdt) {
    dialect_ = std::make_unique<dialect::CrdtDialect>(params_.channel, ctx_.limits.parse);
  } else {
    dialect_ = std::make_unique<dialect::JsonDialect>(ctx_.limits.parse);
  }
  delivery::Options options;
  options.channel = params_.channel;
  options.since = params_.since;
  options.history = dialect_->history() && !params_.head;
  options.snapshots = dialect_->snapshots();
  options.queue_limit = ctx_.limits.queue_messages;
  options.max_patch_bytes = ctx_.limits.parse.max_patch_bytes;
  upstream_.emplace(*ctx_.stub, params_.authorization, strand_post());
  delivery_.emplace(std::move(options), *upstream_, static_cast<delivery::Sink&>(*this));
  link_.emplace(*delivery_, strand_post());
  if (ctx_.presence) {
    presence_ = std::make_shared<SocketPresence>(*ctx_.presence, params_.channel, strand_post(),
                                                 static_cast<SocketPresence::Client*>(this));
    if (params_.presence) presence_->want();
  }

  beast::get_lowest_layer(ws_).expires_never();  // the websocket's own timeouts take over
  // Beast's own idle timeout does not count pings as life; watch_idle() does.
  ws_.set_option(websocket::stream_base::timeout{std::chrono::seconds(30), websocket::stream_base::none(), false});
  ws_.control_callback([this](websocket::frame_type, beast::string_view) {
    last_heard_ = std::chrono::steady_clock::now();
  });
  ws_.read_message_max(ctx_.limits.max_frame_bytes);
  ws_.set_option(websocket::stream_base::decorator([protocol = params_.subprotocol](websocket::response_type& res) {
    res.set(beast::http::field::server, "sync-bridge");
    // Browsers fail a handshake that offered subprotocols and got none back.
    if (!protocol.empty()) res.set(beast::http::field::sec_websocket_protocol, protocol);
  }));
  ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) return;  // the client went away during the handshake
  ctx_.sessions.add(shared_from_this());
  ctx_.stats.socket_opened(params_.channel);
  observe::Metrics::get().connections(params_.crdt ? "crdt" : "ws").Increment();
  counted_ = true;
  last_heard_ = std::chrono::steady_clock::now();
  watch_idle();
  do_read();
  if (refused()) return;
  // Without authentication, listed now: others see the socket as soon as
  // it is open, not after its first history read (see list_at_open).
  if (presence_ && ctx_.list_at_open) join_presence();
  token_.start(shared_from_this());
  // Subscribed through a pointer that owns the socket: while the feed calls
  // the link, the delivery it feeds is alive.
  feed_ = ctx_.feeds->subscribe(params_.channel,
                                std::shared_ptr<upstream::FeedListener>(shared_from_this(), &*link_));
}

void WsSession::join_presence() {
  presence_->join(params_.client_id, params_.crdt ? "crdt" : "ws", params_.authorization);
}

bool WsSession::refused() {
  if (!params_.error.empty()) {
    send_error("invalid_message", params_.error);
    begin_close(websocket::close_code::policy_error, "bad query");
    return true;
  }
  address_hold_ = ctx_.per_address.take(params_.address);
  if (!address_hold_) {
    observe::Metrics::get().refused("per_address");
    send_error("rate_limited", "this address already has " + std::to_string(ctx_.per_address.limit()) +
                                   " sockets open (the bridge's --max-sockets-per-address); close one first");
    begin_close(websocket::close_code::policy_error, "too many sockets");
    return true;
  }
  if (!params_.auth_error.empty()) {
    spdlog::debug("socket from {} refused: {}", params_.address, params_.auth_error);
    observe::Metrics::get().auth_failed("malformed");
    send_error("unauthenticated", params_.auth_error);
    begin_close(websocket::close_code::policy_error, "unauthenticated");
    return true;
  }
  if (ctx_.stopping) {
    send_error("unavailable", "the bridge is shutting down; reconnect");
    begin_close(websocket::close_code::try_again_later, "shutting down");
    return true;
  }
  return false;
}

// ---- What the channel sends ------------------------------------------------

// Counted per subject only once syncd has accepted the token, so a forged
// token naming someone else cannot use up their sockets.
bool WsSession::admitted() {
  const std::string& subject = token_.subject();
  if (!subject_hold_ && !subject.empty()) subject_hold_ = ctx_.per_subject.take(subject);
  if (subject_hold_ || subject.empty()) {
    if (presence_) {
      join_presence();  // unless listed at open already
      presence_->admitted();
    }
    return true;
  }
  if (presence_) presence_->leave();  // now, not after the closing handshake
  send_error("rate_limited", "this token's subject already has " + std::to_string(ctx_.per_subject.limit()) +
                                 " sockets open (the bridge's --max-sockets-per-subject); close one first");
  begin_close(websocket::close_code::policy_error, "too many sockets");
  return false;
}

void WsSession::joined(const api::ChannelInfo& info) {
  enqueue(dialect_->joined(info));
  if (presence_) presence_->history_sent();
}

void WsSession::page(api::SyncState& state, bool continues) {
  enqueue(dialect_->page(state, continues));
  if (!presence_) return;
  presence_->delivered(state.version());
  if (!continues) presence_->history_sent();
}

void WsSession::deliver(const Sequencer::Out& out) {
  if (presence_ && out.broadcast) presence_->delivered(out.broadcast->version);
  enqueue(out.broadcast ? dialect_->broadcast(*out.broadcast) : dialect_->ack(out.ack));
}

void WsSession::request_failed(const grpc::Status& status) {
  send_error(ending_for(status.error_code()).code, status.error_message());
}

void WsSession::outbox_room() {
  if (!wait_outbox_) return;
  wait_outbox_ = false;
  maybe_read();
}

// ---- The client side -------------------------------------------------------

void WsSession::watch_idle() {
  const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.limits.idle_timeout);
  // At least once a second with presence on: positions held back go then.
  auto period = std::max(std::chrono::milliseconds(100), idle / 4);
  if (presence_) period = std::min(period, std::chrono::milliseconds(1000));
  idle_timer_.expires_after(period);
  idle_timer_.async_wait([self = shared_from_this(), idle](beast::error_code ec) {
    if (ec || self->closed_) return;
    if (std::chrono::steady_clock::now() - self->last_heard_ > idle) {
      self->begin_close(websocket::close_code::normal, "idle: no message within the timeout; send heartbeats");
      return;
    }
    if (self->presence_) self->presence_->tick(self->delivery_->position());
    self->release_idle_memory();
    self->watch_idle();
  });
}

void WsSession::do_read() {
  reading_ = true;
  async_read_lean(ws_, buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
}

void WsSession::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    // Closed by the client, timed out, or a frame over the limit (Beast
    // has then sent close 1009). None of these is an error of ours.
    finish();
    return;
  }
  ctx_.stats.message_in();
  last_heard_ = std::chrono::steady_clock::now();
  if (!ws_.got_text()) {
    send_error("invalid_message", "binary frames are not supported; send JSON text frames");
  } else {
    const auto data = buffer_.cdata();
    handle_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
  }
  charge_read(buffer_.size());
  release_read(buffer_);
  reading_ = false;
  if (delivery_->outbox_full()) wait_outbox_ = true;
  if (queue_.size() >= ctx_.limits.queue_messages) wait_queue_ = true;
  maybe_read();
}

void WsSession::release_idle_memory() {
  if (queue_.empty()) queue_.shrink_to_fit();
  ws_.next_layer().release_idle_buffers();
}

void WsSession::maybe_read() {
  if (reading_ || wait_outbox_ || wait_queue_ || wait_rate_ || closed_) return;
  do_read();
}

void WsSession::charge_read(std::size_t bytes) {
  const auto resume = read_rate_.charge(bytes);
  if (!resume) return;
  wait_rate_ = true;
  read_timer_.expires_at(*resume);
  read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec) return;  // the socket is done
    self->wait_rate_ = false;
    self->maybe_read();
  });
}

void WsSession::handle_frame(std::string_view text) {
  auto decoded = dialect_->decode(text);
  if (auto* err = std::get_if<codec::Error>(&decoded)) return send_error(err->code, err->message);
  if (closing_ || !feed_) return;
  auto& msg = std::get<codec::ClientMessage>(decoded);
  if (auto* patch = std::get_if<api::Patch>(&msg)) {
    delivery_->submit(std::move(*patch));
  } else if (auto* big = std::get_if<codec::OversizePatch>(&msg)) {
    delivery_->reject_too_large(big->id, "at least " + std::to_string(big->bytes));
  } else if (auto* sync = std::get_if<api::SyncRequest>(&msg)) {
    delivery_->sync_request(sync->from_version(), sync->limit());
  } else if (auto* r = std::get_if<api::Refresh>(&msg)) {
    token_.refresh(r->token(), params_.channel, *ctx_.stub, strand_post(), shared_from_this());
  } else {
    handle_presence(msg);
  }
}

// presence_subscribe, presence_request, presence_update, applied; a
// heartbeat, whose read itself counted as life.
void WsSession::handle_presence(const codec::ClientMessage& msg) {
  if (std::holds_alternative<codec::Heartbeat>(msg)) return;
  if (!presence_) return send_error("unavailable", "this bridge runs without presence");
  if (std::holds_alternative<codec::PresenceSubscribe>(msg)) {
    presence_->want();
  } else if (std::holds_alternative<codec::PresenceRequest>(msg)) {
    presence_->request();
  } else if (auto* u = std::get_if<api::PresenceUpdate>(&msg)) {
    if (auto error = presence_->update(u->state())) send_error(error->first, error->second);
  } else if (auto* a = std::get_if<api::Applied>(&msg)) {
    presence_->applied(a->version());
  }
}

void WsSession::presence_frame(presence::Frame frame) {
  if (closed_ || closing_) return;
  if (queue_.size() >= ctx_.limits.queue_messages) return presence_->lost();
  enqueue(std::move(frame));
}

void WsSession::presence_error(const std::string& code, const std::string& message) {
  if (closing_ || closed_) return;
  send_error(code, message);
}

// ---- Frames to the client --------------------------------------------------

void WsSession::enqueue(Frame frame) {
  if (!frame || closed_ || closing_) return;
  queue_.push_back(std::move(frame));
  if (!waiting_room_) write_queue();
}

void WsSession::send_error(std::string_view code, std::string_view message) {
  ctx_.stats.error_sent();
  enqueue(dialect_->error(code, message));
}

// Hands queued frames to the stream until it is full (see CoalescingStream),
// then does what a drained queue allows: read the client again, read the
// log, close.
void WsSession::write_queue() {
  while (!queue_.empty()) {
    const Appended appended = append_text(ws_, *queue_.front());
    if (appended == Appended::kFull) {
      waiting_room_ = true;
      ws_.next_layer().when_room([self = shared_from_this()] {
        self->waiting_room_ = false;
        self->write_queue();
      });
      return;
    }
    if (appended != Appended::kDone) {
      // The client is gone, or Beast is closing the stream. The read ends too.
      queue_.clear();
      if (appended == Appended::kFailed) finish();
      return;
    }
    ctx_.stats.message_out(queue_.front()->size());
    queue_.pop_front();
    if (queue_.size() < ctx_.limits.queue_messages / 2 && !drain_posted_ && (delivery_->waiting() || wait_queue_)) {
      // Posted, never run here: this may be inside the handler that
      // enqueued (a history page, say), which has yet to settle the state
      // these steps depend on.
      drain_posted_ = true;
      net::post(ws_.get_executor(), [self = shared_from_this()] {
        self->drain_posted_ = false;
        self->on_drained();
      });
    }
  }
  if (closing_ && !closed_) {
    closed_ = true;
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) { self->finish(); });
  }
}

// What a queue under half its limit allows: rejoin the feed, read the log,
// serve a sync request, read the client again.
void WsSession::on_drained() {
  if (closed_ || queue_.size() >= ctx_.limits.queue_messages / 2) return;  // write_queue posts again
  delivery_->drained();
  if (wait_queue_) {
    wait_queue_ = false;
    maybe_read();
  }
}

void WsSession::end_with(const grpc::Status& status) {
  if (closing_ || closed_) return;
  const Ending e = ending_for(status.error_code());
  std::string message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && message.find("retry") == std::string::npos &&
      message.find("try again") == std::string::npos) {
    message = "syncd is unavailable (" + message + "); reconnect shortly";
  }
  send_error(e.code, message);
  begin_close(e.close, e.code);
}

void WsSession::close(websocket::close_code code, std::string reason) {
  strand_post()([this, code, reason = std::move(reason)] { begin_close(code, reason); });
}

void WsSession::begin_close(websocket::close_code code, std::string reason) {
  if (closing_ || closed_) return;
  closing_ = true;
  close_reason_ = websocket::close_reason(code, reason);
  feed_.reset();  // nothing more is sent: stop taking the channel's patches
  delivery_->stop();
  if (queue_.empty()) {
    closed_ = true;
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) { self->finish(); });
  }
}

void WsSession::finish() {
  closed_ = true;
  idle_timer_.cancel();
  token_.cancel();
  read_timer_.cancel();
  feed_.reset();
  if (delivery_) delivery_->stop();
  if (presence_) presence_->leave();
  address_hold_ = {};
  subject_hold_ = {};
  if (counted_) {
    counted_ = false;
    ctx_.stats.socket_closed(params_.channel);
    observe::Metrics::get().connections(params_.crdt ? "crdt" : "ws").Decrement();
    ctx_.sessions.remove(this);
  }
}

}  // namespace bridge
