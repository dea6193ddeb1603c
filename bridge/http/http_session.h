#pragma once
// One TCP connection's HTTP requests: a WebSocket upgrade on /sync, / or
// /crdt (handed to WsSession), Socket.IO on /socket.io/ (long-polling
// requests and the WebSocket), or a plain GET: /healthz (the process is up),
// /readyz (syncd answers its health check), /stats (counters as JSON) and
// / (the demo page).

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <functional>
#include <optional>

#include "ws/context.h"

namespace bridge {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket&& socket, BridgeContext& ctx);
  void run();

 private:
  void do_read();
  void on_header(boost::beast::error_code ec, std::size_t bytes);
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  // /socket.io/: Engine.IO long-polling and WebSocket (http/socketio_route.cpp).
  void socketio();
  // While a long poll waits for packets: a client that closes the
  // connection meanwhile ends its session, as engine.io does.
  void watch_poll(std::function<void()> closed);
  void respond(boost::beast::http::status status, std::string content_type, std::string body);
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);
  void readiness();

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  // A fresh parser per request: it bounds the head (--max-header-bytes) and the body.
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::beast::http::request<boost::beast::http::string_body> req_;
  std::shared_ptr<void> res_;  // the response being written
  bool polling_ = false;       // a long poll waits for its answer
  BridgeContext& ctx_;
};

// Parses the query of an upgrade request (channel, since, token) and the
// Authorization header. A bad value is reported in `error`.
struct SocketParams;
SocketParams socket_params(const boost::beast::http::request<boost::beast::http::string_body>& req);

}  // namespace bridge
