#include "socketio/eio_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "codec/engineio.h"
#include "observe/bridge_metrics.h"
#include "socket/strand_post.h"
#include "socketio/registry.h"
#include "socketio/sio_socket.h"

namespace bridge::socketio {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {
// Frames handed to the WebSocket at once.
constexpr std::size_t kWriteBatch = 64;
const std::string kUnknownSession = codec::eio_error(1, "Session ID unknown");
}  // namespace

EioSession::EioSession(net::any_io_executor strand, BridgeContext& ctx, std::string sid, Handshake handshake)
    : ctx_(ctx),
      strand_(std::move(strand)),
      sid_(std::move(sid)),
      handshake_(std::move(handshake)),
      ping_timer_(strand_),
      post_timer_(strand_),
      read_rate_(ctx.limits.read_bytes_per_second, ctx.limits.max_frame_bytes, kMinFrameCost) {
  observe::Metrics::get().connections("socketio").Increment();
}

EioSession::~EioSession() { observe::Metrics::get().connections("socketio").Decrement(); }

std::string EioSession::open_packet(bool upgrades) const {
  return codec::eio_open(sid_, upgrades, kPingIntervalMs, kPingTimeoutMs, ctx_.limits.max_frame_bytes);
}

delivery::Post EioSession::strand_post() { return bridge::strand_post(weak_from_this()); }

void EioSession::start(std::shared_ptr<EioTransport> ws) {
  // Here, not in the constructor: the Socket.IO layer's calls hold weak
  // references to the session, which exist only once it is owned. No one
  // else can reach the session yet (its sid is not out).
  sio_ = std::make_unique<SioSocket>(*this, std::move(handshake_));
  strand_post()([this, ws = std::move(ws)]() mutable {
    ws_ = std::move(ws);
    ping(kPingIntervalMs);
    flush();
  });
}

// A ping every interval; the pong must come within the timeout (which is
// shorter than the interval).
void EioSession::ping(int after_ms) {
  ping_timer_.expires_after(std::chrono::milliseconds(after_ms));
  ping_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_ || self->closing_) return;
    self->awaiting_pong_ = true;
    self->send(std::make_shared<const std::string>("2"), false);
    self->await_pong();
  });
}

void EioSession::await_pong() {
  ping_timer_.expires_after(std::chrono::milliseconds(kPingTimeoutMs));
  ping_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_ || self->closing_) return;
    if (self->awaiting_pong_) return self->end("ping timeout");
    self->ping(kPingIntervalMs - kPingTimeoutMs);
  });
}

void EioSession::poll(Respond respond) {
  strand_post()([this, respond = std::move(respond)]() mutable {
    if (closed_) return respond(http::status::bad_request, kUnknownSession);
    if (ws_) return respond(http::status::bad_request, codec::eio_error(3, "Bad request: the session has upgraded"));
    if (poll_) {
      // Two concurrent GETs: the spec's answer is to close the session.
      respond(http::status::bad_request, codec::eio_error(3, "Bad request: a poll is already waiting"));
      return end("two concurrent polls");
    }
    poll_ = std::move(respond);
    if (upgrading_) return answer_poll(http::status::ok, "6");
    flush();
  });
}

void EioSession::post_body(std::string body, Respond respond) {
  strand_post()([this, body = std::move(body), respond = std::move(respond)] {
    if (closed_) return respond(http::status::bad_request, kUnknownSession);
    if (ws_) return respond(http::status::bad_request, codec::eio_error(3, "Bad request: the session has upgraded"));
    if (posting_) {
      respond(http::status::bad_request, codec::eio_error(3, "Bad request: a POST is already being read"));
      return end("two concurrent POSTs");
    }
    // Packets are at least one byte; so many fit in maxPayload.
    auto packets = codec::split_eio_payload(body, ctx_.limits.max_frame_bytes);
    if (!packets) return respond(http::status::bad_request, codec::eio_error(3, "Bad request"));
    for (auto packet : *packets) {
      if (closed_) break;
      on_packet(packet);
    }
    // The client's next POST waits for this "ok": so the read rate paces it.
    const auto resume = read_rate_.charge(body.size());
    if (!resume) return respond(http::status::ok, "ok");
    posting_ = true;
    post_timer_.expires_at(*resume);
    post_timer_.async_wait([self = shared_from_this(), respond](boost::system::error_code) {
      self->posting_ = false;
      respond(http::status::ok, "ok");
    });
  });
}

void EioSession::probed() {
  strand_post()([this] {
    upgrading_ = true;
    if (poll_) answer_poll(http::status::ok, "6");
  });
}

void EioSession::probe_failed() {
  strand_post()([this] {
    upgrading_ = false;
    flush();
  });
}

void EioSession::upgrade(std::shared_ptr<EioTransport> ws) {
  strand_post()([this, ws = std::move(ws)]() mutable {
    // Only after a probe, and only once: a sid alone does not take over a session.
    if (closed_ || !upgrading_ || ws_) return ws->close();
    ws_ = std::move(ws);
    if (poll_) answer_poll(http::status::ok, "6");
    flush();
  });
}

void EioSession::receive(std::string packet) {
  strand_post()([this, packet = std::move(packet)] {
    if (!closed_) on_packet(packet);
  });
}

void EioSession::written() {
  strand_post()([this] {
    ws_writing_ = false;
    if (closing_ && queue_.empty()) return end(*closing_);
    flush();
  });
}

void EioSession::transport_closed() {
  strand_post()([this] { end("the transport closed"); });
}

void EioSession::close(std::string why) {
  strand_post()([this, why = std::move(why)] { end(why); });
}

void EioSession::on_packet(std::string_view text) {
  const auto packet = codec::decode_eio(text);
  if (!packet) return end("not an Engine.IO packet");
  switch (packet->type) {
    case codec::EioType::kMessage: return sio_->on_message(packet->data);
    case codec::EioType::kPong: awaiting_pong_ = false; return;
    case codec::EioType::kPing: return send(std::make_shared<const std::string>("3" + std::string(packet->data)), true);
    case codec::EioType::kClose: return end("the client closed");
    case codec::EioType::kNoop:
    case codec::EioType::kUpgrade: return;
    case codec::EioType::kOpen: return end("a client does not send open");
  }
}

void EioSession::send(Frame packet, bool answer) {
  if (!packet || closed_ || closing_) return;
  if (answer && answers_ >= ctx_.limits.queue_messages) {
    return end("the client asks faster than it reads the answers");
  }
  answers_ += answer ? 1 : 0;
  queue_.push_back(Queued{std::move(packet), answer});
  flush();
}

Frame EioSession::pop() {
  Queued q = std::move(queue_.front());
  queue_.pop_front();
  answers_ -= q.answer ? 1 : 0;
  ctx_.stats.message_out(q.frame->size());
  return std::move(q.frame);
}

void EioSession::end_after_flush(std::string why) {
  if (closed_ || closing_) return;
  send(std::make_shared<const std::string>("1"), false);
  closing_ = std::move(why);
  if (queue_.empty() && !ws_writing_) return end(*closing_);
  ping_timer_.expires_after(std::chrono::seconds(5));
  ping_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->end(*self->closing_);
  });
}

// Hands queued packets to the transport: a batch to the WebSocket while it
// writes none, or everything up to maxPayload to a waiting poll.
void EioSession::flush() {
  if (queue_.empty() || closed_) return;
  if (ws_) {
    if (ws_writing_) return;
    std::vector<Frame> batch;
    while (!queue_.empty() && batch.size() < kWriteBatch) batch.push_back(pop());
    ws_writing_ = true;
    ws_->write(std::move(batch));
  } else if (poll_ && !upgrading_) {
    std::string body;
    while (!queue_.empty() &&
           (body.empty() || body.size() + queue_.front().frame->size() + 1 <= ctx_.limits.max_frame_bytes)) {
      if (!body.empty()) body += codec::kRecordSeparator;
      body += *pop();
    }
    answer_poll(http::status::ok, std::move(body));
    if (closing_ && queue_.empty()) return end(*closing_);
  } else {
    return;
  }
  if (queue_.size() < ctx_.limits.queue_messages / 2 && !drain_posted_ && sio_->waiting()) {
    // Posted: this may run inside the handler that queued, which has yet
    // to settle what draining depends on.
    drain_posted_ = true;
    strand_post()([this] {
      drain_posted_ = false;
      if (!closed_) sio_->drained();
    });
  }
}

void EioSession::answer_poll(http::status status, std::string body) {
  Respond respond = std::move(poll_);
  poll_ = nullptr;
  respond(status, std::move(body));
}

void EioSession::end(std::string why) {
  if (closed_) return;
  closed_ = true;
  ping_timer_.cancel();
  post_timer_.cancel();
  if (sio_) sio_->stop();
  queue_.clear();
  answers_ = 0;
  if (poll_) answer_poll(http::status::ok, "1");
  if (ws_) ws_->close();
  ws_.reset();
  ctx_.socketio->remove(sid_);
  spdlog::debug("Socket.IO session {} ended: {}", sid_, why);
}

}  // namespace bridge::socketio
