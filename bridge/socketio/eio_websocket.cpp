#include "socketio/eio_websocket.h"

#include <boost/asio/post.hpp>

#include "socketio/registry.h"
#include "ws/append_text.h"
#include "ws/lean_read.h"

namespace bridge::socketio {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

EioWebSocket::EioWebSocket(beast::tcp_stream&& stream, BridgeContext& ctx)
    : ctx_(ctx),
      ws_(std::move(stream)),
      read_timer_(ws_.get_executor()),
      upgrade_timer_(ws_.get_executor()),
      read_rate_(ctx.limits.read_bytes_per_second, ctx.limits.max_frame_bytes, kMinFrameCost) {}

void EioWebSocket::run(beast::http::request<beast::http::string_body> req, std::shared_ptr<EioSession> session,
                       Handshake handshake) {
  session_ = std::move(session);
  handshake_ = std::move(handshake);
  beast::get_lowest_layer(ws_).expires_never();
  // The session's heartbeat watches for silence; Beast only times the handshake.
  ws_.set_option(websocket::stream_base::timeout{std::chrono::seconds(30), websocket::stream_base::none(), false});
  ws_.read_message_max(ctx_.limits.max_frame_bytes);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(beast::http::field::server, "sync-bridge");
  }));
  ws_.async_accept(req, beast::bind_front_handler(&EioWebSocket::on_accept, shared_from_this()));
}

void EioWebSocket::on_accept(beast::error_code ec) {
  if (ec) return;
  if (!session_) {
    // The session shares the connection's strand: its packets reach the
    // stream with no hop between strands.
    session_ = ctx_.socketio->create(ctx_, std::move(handshake_), ws_.get_executor());
    queue(std::make_shared<const std::string>(session_->open_packet(false)), false);
    attached_ = true;
    session_->start(shared_from_this());
  } else {
    upgrade_timer_.expires_after(kUpgradeTimeout);
    upgrade_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->attached_) self->close();
    });
  }
  do_read();
}

void EioWebSocket::do_read() {
  async_read_lean(ws_, buffer_, beast::bind_front_handler(&EioWebSocket::on_read, shared_from_this()));
}

void EioWebSocket::on_read(beast::error_code ec, std::size_t) {
  if (ec) return finish();
  ctx_.stats.message_in();
  if (!ws_.got_text()) {
    // Binary packets are not spoken here: the session ends, as for any bad packet.
    return on_packet(std::string());
  }
  on_packet(beast::buffers_to_string(buffer_.cdata()));
  const std::size_t bytes = buffer_.size();
  release_read(buffer_);
  if (closed_) return;
  if (const auto resume = read_rate_.charge(bytes)) {
    read_timer_.expires_at(*resume);
    read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->do_read();
    });
    return;
  }
  do_read();
}

void EioWebSocket::on_packet(std::string packet) {
  if (!session_) return;  // finished
  if (attached_) return session_->receive(std::move(packet));
  // Upgrading: the probe, then the upgrade packet; nothing else counts yet.
  if (packet == "2probe" && !probed_) {
    probed_ = true;
    queue(std::make_shared<const std::string>("3probe"), false);
    session_->probed();
  } else if (packet == "5" && probed_) {
    attached_ = true;
    upgrade_timer_.cancel();
    session_->upgrade(shared_from_this());
  } else if (packet.empty() || (packet.front() != '2' && packet.front() != '3' && packet.front() != '6')) {
    close();
  }
}

void EioWebSocket::write(std::vector<Frame> frames) {
  net::post(ws_.get_executor(), [self = shared_from_this(), frames = std::move(frames)]() mutable {
    if (self->closed_) return;
    for (std::size_t i = 0; i < frames.size(); ++i) self->queue(std::move(frames[i]), i + 1 == frames.size());
  });
}

void EioWebSocket::queue(Frame frame, bool ends_batch) {
  out_.push_back(Out{std::move(frame), ends_batch});
  if (!waiting_room_) write_out();
}

// Hands queued packets to the stream while it takes them.
void EioWebSocket::write_out() {
  while (!out_.empty() && !closed_) {
    const Appended appended = append_text(ws_, *out_.front().frame);
    if (appended == Appended::kFull) {
      waiting_room_ = true;
      ws_.next_layer().when_room([self = shared_from_this()] {
        self->waiting_room_ = false;
        self->write_out();
      });
      return;
    }
    if (appended != Appended::kDone) return finish();
    const bool ends_batch = out_.front().ends_batch;
    out_.pop_front();
    if (ends_batch) session_->written();
  }
}

void EioWebSocket::close() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    self->closed_ = true;
    self->out_.clear();
    self->ws_.async_close(websocket::close_code::normal, [self](beast::error_code) { self->finish(); });
  });
}

void EioWebSocket::finish() {
  closed_ = true;
  read_timer_.cancel();
  upgrade_timer_.cancel();
  out_.clear();
  if (session_ && attached_) session_->transport_closed();
  if (session_ && probed_ && !attached_) session_->probe_failed();  // the session goes on polling
  session_.reset();
}

}  // namespace bridge::socketio
