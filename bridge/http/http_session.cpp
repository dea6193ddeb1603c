#include "http/http_session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>
#include <algorithm>
#include <charconv>

#include "auth/client_text.h"
#include "auth/token_format.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "codec/channel_name.h"
#include "http/served_files.h"
#include "observe/bridge_metrics.h"
#include "observe/exposition.h"
#include "observe/health.h"
#include "ws/ws_session.h"

namespace bridge {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// RFC 7230 token characters: what a subprotocol name may hold.
bool http_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Where a token came from, checked before anything else sees it: only a
// token with a JWT's syntax becomes the socket's `authorization`.
void take_token(std::string_view authorization, SocketParams* p) {
  if (!p->authorization.empty() || !p->auth_error.empty()) return;  // the first one offered counts
  const auto bearer = syncd::auth::bearer_token(authorization);
  if (bearer.ok()) {
    p->authorization = syncd::auth::authorization_value(bearer.token);
  } else {
    p->auth_error = bearer.error;
  }
}

}  // namespace

SocketParams socket_params(const http::request<http::string_body>& req) {
  SocketParams p;
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) {
    p.error = "the request target is not a valid URL";
    return p;
  }
  for (const auto& param : url->params()) {
    if (param.key == "channel") {
      p.channel = param.value;
    } else if (param.key == "since") {
      if (param.value == "head") {
        p.head = true;
      } else {
        const char* first = param.value.data();
        const char* last = first + param.value.size();
        auto [ptr, ec] = std::from_chars(first, last, p.since);
        if (ec != std::errc() || ptr != last || p.since < 0) {
          p.error = "since must be a version (0, 1, 2, ...) or \"head\"";
          p.since = 0;
        }
      }
    } else if (param.key == "token" && !param.value.empty()) {
      take_token(param.value, &p);
    } else if (param.key == "presence") {
      p.presence = param.value == "1" || param.value == "true";
    } else if (param.key == "clientId") {
      p.client_id = param.value;
      if (auto error = syncd::auth::client_id_error(p.client_id)) {
        p.error = *error;
        p.client_id.clear();
      }
    }
  }
  if (auto auth = req.find(http::field::authorization); auth != req.end()) {
    const std::string_view value = auth->value();
    if (value.size() < 7 || !boost::beast::iequals(value.substr(0, 7), "bearer ")) {
      if (p.authorization.empty() && p.auth_error.empty()) {
        p.auth_error = "the Authorization header must be `Bearer <JWT>`";
      }
    } else {
      take_token(value, &p);
    }
  }
  // Browsers cannot set headers on a WebSocket; they can offer subprotocols:
  // new WebSocket(url, ["sync", "bearer." + token]). The bearer entry carries
  // the token; another offered entry (or, failing that, it) is echoed back.
  if (auto offered = req.find(http::field::sec_websocket_protocol); offered != req.end()) {
    std::string_view list = offered->value();
    std::string bearer, other;
    while (!list.empty()) {
      const auto comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (item.substr(0, 7) == "bearer.") {
        if (bearer.empty()) bearer = std::string(item);
      } else if (other.empty() && http_token(item)) {
        other = std::string(item);
      }
    }
    if (!bearer.empty()) take_token(std::string_view(bearer).substr(7), &p);
    // Echo a plain name the client offered; failing that, the bearer entry,
    // only when it holds a token of a JWT's syntax (whichever token counts).
    const bool bearer_ok = !bearer.empty() && syncd::auth::bearer_token(std::string_view(bearer).substr(7)).ok();
    p.subprotocol = !other.empty() ? other : bearer_ok ? bearer : "";
  }
  if (p.error.empty() && !valid_channel(p.channel)) {
    p.error = "channel must be 1-128 characters of [A-Za-z0-9._:-]";
  }
  return p;
}

HttpSession::HttpSession(net::ip::tcp::socket&& socket, BridgeContext& ctx) : stream_(std::move(socket)), ctx_(ctx) {}

void HttpSession::run() {
  net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
}

namespace {
// Requests the bridge serves are GETs and upgrades, and Socket.IO polling
// POSTs (allowed up to --max-frame-bytes, see on_header): other bodies are small.
constexpr std::uint64_t kMaxBodyBytes = 16 << 10;
}  // namespace

void HttpSession::do_read() {
  req_ = {};
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(ctx_.limits.max_header_bytes));
  parser_->body_limit(kMaxBodyBytes);
  // Slow senders (slowloris) are cut off: the whole head must arrive in time.
  stream_.expires_after(ctx_.limits.header_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
}

// Socket.IO's polling POSTs carry packets up to maxPayload; other bodies stay small.
void HttpSession::on_header(beast::error_code ec, std::size_t bytes) {
  if (ec) return on_read(ec, bytes);
  if (const auto path = path_of(parser_->get().target()); path == "/socket.io/" || path == "/socket.io") {
    parser_->body_limit(ctx_.limits.max_frame_bytes);
  }
  http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::header_limit || ec == http::error::body_limit) {
    req_.version(11);
    req_.keep_alive(false);
    respond(ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                            : http::status::payload_too_large,
            "text/plain", ec == http::error::header_limit ? "request head too large (--max-header-bytes)\n"
                                                          : "request body too large\n");
    return;
  }
  if (ec) return;  // closed, timed out or not HTTP: nothing to answer
  req_ = parser_->release();
  parser_.reset();
  const std::string_view path = path_of(req_.target());
  if (path == "/socket.io/" || path == "/socket.io") return socketio();
  if (beast::websocket::is_upgrade(req_)) {
    if (path != "/sync" && path != "/" && path != "/crdt") {
      respond(http::status::not_found, "text/plain", "WebSocket endpoints: /sync, / and /crdt\n");
      return;
    }
    SocketParams params = socket_params(req_);
    params.crdt = path == "/crdt";
    beast::error_code peer_ec;
    const auto peer = stream_.socket().remote_endpoint(peer_ec);
    params.address = peer_ec ? std::string("unknown") : peer.address().to_string();
    std::make_shared<WsSession>(std::move(stream_), ctx_)->run(std::move(req_), std::move(params));
    return;
  }
  if (req_.method() != http::verb::get && req_.method() != http::verb::head) {
    respond(http::status::method_not_allowed, "text/plain", "only GET\n");
  } else if (path == "/healthz") {
    respond(http::status::ok, "application/json", R"({"status":"ok"})");
  } else if (path == "/health") {
    const bool stopping = ctx_.stopping;  // read once: the code and the body must agree
    respond(stopping ? http::status::service_unavailable : http::status::ok, "application/json",
            syncd::observe::health_json(stopping ? "stopping" : "ok", ctx_.stats.connections()));
  } else if (path == "/metrics") {
    auto& m = observe::Metrics::get();
    m.upstream_up.Set(ctx_.channel->GetState(false) == GRPC_CHANNEL_READY ? 1 : 0);
    respond(http::status::ok, syncd::observe::kMetricsContentType, m.scrape());
  } else if (path == "/readyz") {
    readiness();
  } else if (path == "/stats") {
    const auto state = ctx_.channel->GetState(false);
    respond(http::status::ok, "application/json",
            ctx_.stats.to_json(state == GRPC_CHANNEL_READY ? "ready"
                               : state == GRPC_CHANNEL_TRANSIENT_FAILURE ? "unavailable"
                                                                         : "connecting",
                               ctx_.per_subject));
  } else if (const ServedFile* file = served_file(path)) {
    respond(http::status::ok, std::string(file->content_type), std::string(file->text));
  } else {
    respond(http::status::not_found, "application/json",
            R"({"error":"not found; try /health, /healthz, /readyz, /stats, /metrics, or a WebSocket on /sync"})");
  }
}

// Ready when syncd answers its health check within a second.
void HttpSession::readiness() {
  struct Call {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    std::unique_ptr<grpc::health::v1::Health::Stub> stub;
  };
  auto call = std::make_shared<Call>();
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  call->stub = grpc::health::v1::Health::NewStub(ctx_.channel);
  call->stub->async()->Check(&call->ctx, &call->req, &call->resp,
                             [self = shared_from_this(), call](grpc::Status st) {
                               const bool ok = st.ok() &&
                                   call->resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
                               net::post(self->stream_.get_executor(), [self, ok, msg = st.error_message()] {
                                 if (ok) {
                                   self->respond(http::status::ok, "application/json", R"({"status":"ready"})");
                                 } else {
                                   self->respond(http::status::service_unavailable, "application/json",
                                                 R"({"status":"unavailable","upstream":"syncd does not answer"})");
                                 }
                               });
                             });
}

void HttpSession::respond(http::status status, std::string content_type, std::string body) {
  if (polling_) {
    polling_ = false;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);  // the wait for the client closing the poll's connection
  }
  auto res = std::make_shared<http::response<http::string_body>>(status, req_.version());
  res->set(http::field::server, "sync-bridge");
  res->set(http::field::content_type, content_type);
  res->set(http::field::cache_control, "no-store");
  res->keep_alive(req_.keep_alive());
  if (req_.method() != http::verb::head) res->body() = std::move(body);
  res->prepare_payload();
  res_ = res;
  stream_.expires_after(ctx_.limits.header_timeout);  // a long poll may have waited past the read's timeout
  http::async_write(stream_, *res,
                    beast::bind_front_handler(&HttpSession::on_write, shared_from_this(), res->keep_alive()));
}

void HttpSession::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  res_.reset();
  if (ec) return;
  if (keep_alive) {
    do_read();
  } else {
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  }
}

}  // namespace bridge
