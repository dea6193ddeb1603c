#include "socketio/eio_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "codec/engineio.h"
#include "socketio/registry.h"
#include "socketio/sio_socket.h"

namespace bridge::socketio {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {
// Frames handed to the WebSocket at once.
constexpr std::size_t kWriteBatch = 64;
}  // namespace

EioSession::EioSession(net::any_io_executor strand, BridgeContext& ctx, std::string sid, Handshake handshake)
    : ctx_(ctx),
      strand_(std::move(strand)),
      sid_(std::move(sid)),
      ping_timer_(strand_),
      sio_(std::make_unique<SioSocket>(*this, std::move(handshake))) {}

EioSession::~EioSession() = default;

std::string EioSession::open_packet(bool upgrades) const {
  return codec::eio_open(sid_, upgrades, kPingIntervalMs, kPingTimeoutMs, ctx_.limits.max_frame_bytes);
}

void EioSession::run_on_strand(std::function<void()> fn) {
  auto self = weak_from_this().lock();
  if (!self) return;
  net::post(strand_, [self = std::move(self), fn = std::move(fn)] { fn(); });
}

void EioSession::start(std::shared_ptr<EioTransport> ws) {
  run_on_strand([this, ws = std::move(ws)]() mutable {
    ws_ = std::move(ws);
    heartbeat();
    flush();
  });
}

// A ping every interval; the pong must come before the next one is due.
void EioSession::heartbeat() {
  ping_timer_.expires_after(std::chrono::milliseconds(awaiting_pong_ ? kPingTimeoutMs : kPingIntervalMs));
  ping_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_ || self->closing_) return;
    if (self->awaiting_pong_) return self->end("ping timeout");
    self->awaiting_pong_ = true;
    self->send(std::make_shared<const std::string>("2"));
    self->heartbeat();
  });
}

void EioSession::poll(Respond respond) {
  run_on_strand([this, respond = std::move(respond)]() mutable {
    if (closed_) return respond(http::status::bad_request, R"({"code":1,"message":"Session ID unknown"})");
    if (ws_) return respond(http::status::bad_request, R"({"code":3,"message":"Bad request: the session has upgraded"})");
    if (poll_) {
      // Two concurrent GETs: the spec's answer is to close the session.
      respond(http::status::bad_request, R"({"code":3,"message":"Bad request: a poll is already waiting"})");
      return end("two concurrent polls");
    }
    poll_ = std::move(respond);
    if (upgrading_) return answer_poll(http::status::ok, "6");
    flush();
  });
}

void EioSession::post_body(std::string body, Respond respond) {
  run_on_strand([this, body = std::move(body), respond = std::move(respond)] {
    if (closed_) return respond(http::status::bad_request, R"({"code":1,"message":"Session ID unknown"})");
    // Packets are at least one byte; so many fit in maxPayload.
    auto packets = codec::split_eio_payload(body, ctx_.limits.max_frame_bytes);
    if (!packets) return respond(http::status::bad_request, R"({"code":3,"message":"Bad request"})");
    respond(http::status::ok, "ok");
    for (auto packet : *packets) {
      if (closed_) return;
      on_packet(packet);
    }
  });
}

void EioSession::probed() {
  run_on_strand([this] {
    upgrading_ = true;
    if (poll_) answer_poll(http::status::ok, "6");
  });
}

void EioSession::upgrade(std::shared_ptr<EioTransport> ws) {
  run_on_strand([this, ws = std::move(ws)]() mutable {
    if (closed_) return ws->close();
    ws_ = std::move(ws);
    if (poll_) answer_poll(http::status::ok, "6");
    flush();
  });
}

void EioSession::receive(std::string packet) {
  run_on_strand([this, packet = std::move(packet)] {
    if (!closed_) on_packet(packet);
  });
}

void EioSession::written() {
  run_on_strand([this] {
    ws_writing_ = false;
    if (closing_ && queue_.empty()) return end(*closing_);
    flush();
  });
}

void EioSession::transport_closed() {
  run_on_strand([this] { end("the transport closed"); });
}

void EioSession::close(std::string why) {
  run_on_strand([this, why = std::move(why)] { end(why); });
}

void EioSession::on_packet(std::string_view text) {
  const auto packet = codec::decode_eio(text);
  if (!packet) return end("not an Engine.IO packet");
  switch (packet->type) {
    case codec::EioType::kMessage: return sio_->on_message(packet->data);
    case codec::EioType::kPong: awaiting_pong_ = false; return;
    case codec::EioType::kPing: return send(std::make_shared<const std::string>("3" + std::string(packet->data)));
    case codec::EioType::kClose: return end("the client closed");
    case codec::EioType::kNoop:
    case codec::EioType::kUpgrade: return;
    case codec::EioType::kOpen: return end("a client does not send open");
  }
}

void EioSession::end_after_flush(std::string why) {
  if (closed_ || closing_) return;
  send(std::make_shared<const std::string>("1"));
  closing_ = std::move(why);
  if (queue_.empty() && !ws_writing_) return end(*closing_);
  ping_timer_.expires_after(std::chrono::seconds(5));
  ping_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->end(*self->closing_);
  });
}

void EioSession::send(Frame packet) {
  if (!packet || closed_ || closing_) return;
  queue_.push_back(std::move(packet));
  flush();
}

// Hands queued packets to the transport: a batch to the WebSocket while it
// writes none, or everything up to maxPayload to a waiting poll.
void EioSession::flush() {
  if (queue_.empty() || closed_) return;
  if (ws_) {
    if (ws_writing_) return;
    std::vector<Frame> batch;
    while (!queue_.empty() && batch.size() < kWriteBatch) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
      ctx_.stats.message_out();
    }
    ws_writing_ = true;
    ws_->write(std::move(batch));
  } else if (poll_ && !upgrading_) {
    std::string body;
    while (!queue_.empty() && (body.empty() || body.size() + queue_.front()->size() + 1 <= ctx_.limits.max_frame_bytes)) {
      if (!body.empty()) body += codec::kRecordSeparator;
      body += *queue_.front();
      queue_.pop_front();
      ctx_.stats.message_out();
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
    run_on_strand([this] {
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
  sio_->stop();
  queue_.clear();
  if (poll_) answer_poll(http::status::ok, "1");
  if (ws_) ws_->close();
  ws_.reset();
  ctx_.socketio->remove(sid_);
  spdlog::debug("Socket.IO session {} ended: {}", sid_, why);
}

}  // namespace bridge::socketio
