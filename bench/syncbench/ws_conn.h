#pragma once
// One WebSocket client connection for syncbench (idle, fanout): connect,
// upgrade, wait for the server's first frame (the sync_state that says the
// session is open), then read frames until closed. Sends are queued, so a
// caller may send at any time from the connection's strand. Control frames
// (pings) are answered by Beast. Nothing here throws.

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace syncbench {

class WsConn : public std::enable_shared_from_this<WsConn> {
 public:
  using Stream = boost::beast::websocket::stream<boost::beast::tcp_stream>;

  // on_open(ok): once, after the first frame arrived (ok) or the connection
  // failed (!ok). on_frame(text): every later frame, on the strand.
  WsConn(boost::asio::io_context& ioc, std::string host, std::string target,
         std::function<void(bool)> on_open, std::function<void(std::string_view)> on_frame = {})
      : ws_(boost::asio::make_strand(ioc)),
        host_(std::move(host)),
        target_(std::move(target)),
        on_open_(std::move(on_open)),
        on_frame_(std::move(on_frame)) {}

  void start(const boost::asio::ip::tcp::endpoint& ep) {
    auto& tcp = boost::beast::get_lowest_layer(ws_);
    tcp.expires_after(std::chrono::seconds(60));
    tcp.async_connect(ep, [self = shared_from_this()](boost::beast::error_code ec) {
      if (ec) return self->on_open_(false);
      boost::beast::get_lowest_layer(self->ws_).expires_never();
      self->ws_.async_handshake(self->host_, self->target_, [self](boost::beast::error_code ec) {
        if (ec) return self->on_open_(false);
        self->ws_.async_read(self->buffer_, [self](boost::beast::error_code ec, std::size_t) {
          self->on_open_(!ec);
          if (!ec && self->first_to_on_frame_ && self->on_frame_) {
            const auto data = self->buffer_.cdata();
            self->on_frame_(std::string_view(static_cast<const char*>(data.data()), data.size()));
          }
          self->buffer_.consume(self->buffer_.size());
          if (!ec) self->read();
        });
      });
    });
  }

  // on_frame also gets the first frame (after on_open).
  void also_first_frame() { first_to_on_frame_ = true; }
  // Called once the connection ends after it opened (closed by either side).
  void on_end(std::function<void()> fn) { on_end_ = std::move(fn); }

  // Queues one text frame; call on the strand (post through executor()).
  void send(std::string text) {
    out_.push_back(std::move(text));
    if (out_.size() == 1) write();
  }

  Stream::executor_type executor() { return ws_.get_executor(); }

  void close() {
    boost::beast::error_code ignored;
    boost::beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
      if (ec) {
        if (self->on_end_) self->on_end_();
        return;
      }
      if (self->on_frame_) {
        const auto data = self->buffer_.cdata();
        self->on_frame_(std::string_view(static_cast<const char*>(data.data()), data.size()));
      }
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }

  void write() {
    ws_.async_write(boost::asio::buffer(out_.front()), [self = shared_from_this()](boost::beast::error_code ec,
                                                                                   std::size_t) {
      if (ec) return;
      self->out_.pop_front();
      if (!self->out_.empty()) self->write();
    });
  }

  Stream ws_;
  boost::beast::flat_buffer buffer_;
  std::string host_, target_;
  std::function<void(bool)> on_open_;
  std::function<void(std::string_view)> on_frame_;
  std::deque<std::string> out_;
  bool first_to_on_frame_ = false;
  std::function<void()> on_end_;
};

}  // namespace syncbench
