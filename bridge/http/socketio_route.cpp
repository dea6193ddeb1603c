// HttpSession::socketio(): the Engine.IO v4 requests on /socket.io/.
//   GET  ?EIO=4&transport=polling           a new session: the open packet
//   GET  ?EIO=4&transport=polling&sid=S     a long poll: the packets queued for S
//   POST ?EIO=4&transport=polling&sid=S     packets from the client
//   WebSocket upgrade ?EIO=4&transport=websocket[&sid=S]
// Errors are the spec's JSON bodies with status 400.

#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>

#include "codec/engineio.h"
#include "http/http_session.h"
#include "observe/bridge_metrics.h"
#include "socketio/eio_session.h"
#include "socketio/eio_websocket.h"
#include "ws/ws_session.h"

namespace bridge {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

void HttpSession::socketio() {
  const auto refuse = [this](int code, std::string_view message) {
    respond(http::status::bad_request, "application/json", codec::eio_error(code, message));
  };
  std::string eio, transport, sid;
  if (auto url = boost::urls::parse_origin_form(req_.target())) {
    for (const auto& param : url->params()) {
      if (param.key == "EIO") eio = param.value;
      if (param.key == "transport") transport = param.value;
      if (param.key == "sid") sid = param.value;
    }
  }
  if (eio != "4") return refuse(5, "Unsupported protocol version: this server speaks Engine.IO 4 (socket.io-client 3+)");
  if (transport != "polling" && transport != "websocket") return refuse(0, "Transport unknown");
  std::shared_ptr<socketio::EioSession> session;
  if (!sid.empty()) {
    session = ctx_.socketio->find(sid);
    if (!session) return refuse(1, "Session ID unknown");
  }
  if (ctx_.stopping && !session) return refuse(4, "Forbidden: the bridge is shutting down");
  const SocketParams params = socket_params(req_);
  beast::error_code peer_ec;
  const auto peer = stream_.socket().remote_endpoint(peer_ec);
  socketio::Handshake handshake{params.authorization, params.auth_error,
                                peer_ec ? std::string("unknown") : peer.address().to_string(), {}};
  if (!session) {
    // A new session takes its address's place at once, CONNECT or not.
    handshake.address_hold = ctx_.per_address.take(handshake.address);
    if (!handshake.address_hold) {
      observe::Metrics::get().refused("per_address");
      return refuse(4, "Forbidden: this address already has " + std::to_string(ctx_.per_address.limit()) +
                           " sockets open (the bridge's --max-sockets-per-address); close one first");
    }
  }

  if (beast::websocket::is_upgrade(req_)) {
    if (transport != "websocket") return refuse(3, "Bad request: an upgrade needs transport=websocket");
    std::make_shared<socketio::EioWebSocket>(std::move(stream_), ctx_)
        ->run(std::move(req_), std::move(session), std::move(handshake));
    return;
  }
  if (transport != "polling") return refuse(3, "Bad request: transport=websocket needs a WebSocket upgrade");
  if (!session) {
    if (req_.method() != http::verb::get) return refuse(2, "Bad handshake method");
    session = ctx_.socketio->create(ctx_, std::move(handshake));
    session->start(nullptr);
    return respond(http::status::ok, "text/plain; charset=UTF-8", session->open_packet(true));
  }
  // Answered later, on this connection's strand; the connection waits meanwhile.
  auto answer = [self = shared_from_this()](http::status status, std::string body) {
    net::post(self->stream_.get_executor(), [self, status, body = std::move(body)]() mutable {
      self->respond(status, status == http::status::ok ? "text/plain; charset=UTF-8" : "application/json",
                    std::move(body));
    });
  };
  stream_.expires_never();
  if (req_.method() == http::verb::get) {
    session->poll(std::move(answer));
    return watch_poll([weak = std::weak_ptr<socketio::EioSession>(session)] {
      if (auto s = weak.lock()) s->close("the client closed its poll's connection");
    });
  }
  if (req_.method() == http::verb::post) return session->post_body(std::move(req_.body()), std::move(answer));
  respond(http::status::method_not_allowed, "text/plain", "GET or POST\n");
}

void HttpSession::watch_poll(std::function<void()> closed) {
  polling_ = true;
  stream_.socket().async_wait(net::ip::tcp::socket::wait_read,
                              [self = shared_from_this(), closed = std::move(closed)](beast::error_code ec) {
                                if (ec || !self->polling_) return;  // answered meanwhile
                                // Readable while a poll waits: the client closed the
                                // connection (a client sends nothing else on it).
                                self->polling_ = false;
                                closed();
                              });
}

}  // namespace bridge
