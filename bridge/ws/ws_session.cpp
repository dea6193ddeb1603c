#include "ws/ws_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include "codec/crdt_codec.h"
#include "codec/json_codec.h"

namespace bridge {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {

// How an ended upstream stream reaches the client: an error code for the
// error frame and a close code. 1013 ("try again later") for anything a
// retry can fix.
struct Ending {
  const char* code;
  websocket::close_code close;
};

Ending ending_for(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return {nullptr, websocket::close_code::normal};
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION: return {"invalid_message", websocket::close_code::policy_error};
    case grpc::StatusCode::UNAUTHENTICATED: return {"unauthenticated", websocket::close_code::policy_error};
    case grpc::StatusCode::PERMISSION_DENIED: return {"forbidden", websocket::close_code::policy_error};
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return {"rate_limited", websocket::close_code::try_again_later};
    case grpc::StatusCode::DEADLINE_EXCEEDED: return {"unavailable", websocket::close_code::going_away};
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED: return {"unavailable", websocket::close_code::try_again_later};
    default: return {"internal", websocket::close_code::internal_error};
  }
}

}  // namespace

void Sessions::add(const std::shared_ptr<WsSession>& s) {
  std::lock_guard lock(mu_);
  sessions_.insert(s);
}

void Sessions::remove(const WsSession* s) {
  std::lock_guard lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (auto p = it->lock(); !p || p.get() == s) {
      sessions_.erase(it);
      return;
    }
  }
}

void Sessions::close_all() {
  std::vector<std::shared_ptr<WsSession>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& w : sessions_) {
      if (auto s = w.lock()) all.push_back(std::move(s));
    }
  }
  for (auto& s : all) s->close(websocket::close_code::going_away, "the bridge is shutting down");
}

WsSession::WsSession(beast::tcp_stream&& stream, BridgeContext& ctx)
    : ctx_(ctx), ws_(std::move(stream)), heartbeat_timer_(ws_.get_executor()), idle_timer_(ws_.get_executor()) {}

WsSession::~WsSession() {
  if (upstream_) upstream_->cancel();
}

void WsSession::run(beast::http::request<beast::http::string_body> req, SocketParams params) {
  params_ = std::move(params);
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
  counted_ = true;
  last_heard_ = std::chrono::steady_clock::now();
  watch_idle();
  if (!params_.error.empty()) {
    send_error("invalid_message", params_.error);
    begin_close(websocket::close_code::policy_error, "bad query");
    do_read();
    return;
  }
  if (ctx_.stopping) {
    send_error("unavailable", "the bridge is shutting down; reconnect");
    begin_close(websocket::close_code::try_again_later, "shutting down");
    do_read();
    return;
  }
  api::OpenChannel open;
  open.set_channel(params_.channel);
  open.set_from_version(params_.since);
  open.set_no_history(params_.head || params_.crdt);  // CRDT clients pull
  upstream_ = upstream::UpstreamSession::start(*ctx_.stub, open, params_.authorization,
                                               std::weak_ptr<WsSession>(shared_from_this()));
  heartbeat_upstream();
  do_read();
}

void WsSession::heartbeat_upstream() {
  // syncd closes sessions it has not heard from; while the socket is alive
  // (a client may only answer pings), keep the upstream alive too.
  heartbeat_timer_.expires_after(ctx_.limits.upstream_heartbeat);
  heartbeat_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closed_) return;
    api::SessionRequest hb;
    hb.mutable_heartbeat();
    (void)self->upstream_->send(std::move(hb));
    self->heartbeat_upstream();
  });
}

void WsSession::watch_idle() {
  const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.limits.idle_timeout);
  idle_timer_.expires_after(std::max(std::chrono::milliseconds(100), idle / 4));
  idle_timer_.async_wait([self = shared_from_this(), idle](beast::error_code ec) {
    if (ec || self->closed_) return;
    if (std::chrono::steady_clock::now() - self->last_heard_ > idle) {
      if (self->upstream_) self->upstream_->cancel();
      self->begin_close(websocket::close_code::normal, "idle: no message within the timeout; send heartbeats");
      return;
    }
    self->watch_idle();
  });
}

void WsSession::do_read() {
  reading_ = true;
  ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
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
  bool more = true;
  if (!ws_.got_text()) {
    send_error("invalid_message", "binary frames are not supported; send JSON text frames");
  } else {
    const auto data = buffer_.cdata();
    more = handle_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
  }
  buffer_.consume(buffer_.size());
  reading_ = false;
  if (!more) wait_upstream_ = true;
  if (backlog_.load() >= ctx_.limits.queue_messages) wait_queue_ = true;
  maybe_read();
}

void WsSession::maybe_read() {
  if (reading_ || wait_upstream_ || wait_queue_) return;
  do_read();
}

void WsSession::on_upstream_drained() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    self->wait_upstream_ = false;
    self->maybe_read();
  });
}

bool WsSession::handle_frame(std::string_view text) {
  if (params_.crdt) return handle_crdt_frame(text);
  auto decoded = codec::decode_client_frame(text);
  if (auto* err = std::get_if<codec::Error>(&decoded)) {
    send_error(err->code, err->message);
    return true;
  }
  if (closing_ || !upstream_) return true;
  auto& msg = std::get<codec::ClientMessage>(decoded);
  api::SessionRequest req;
  if (auto* patch = std::get_if<api::Patch>(&msg)) {
    *req.mutable_patch() = std::move(*patch);
  } else if (auto* sync = std::get_if<api::SyncRequest>(&msg)) {
    *req.mutable_sync_request() = *sync;
  } else if (auto* refresh = std::get_if<api::Refresh>(&msg)) {
    *req.mutable_refresh() = std::move(*refresh);
  } else {
    return true;  // a heartbeat: the read itself counted as life
  }
  return upstream_->send(std::move(req));
}

bool WsSession::handle_crdt_frame(std::string_view text) {
  auto decoded = codec::decode_crdt_frame(text, params_.channel);
  if (auto* err = std::get_if<codec::Error>(&decoded)) {
    send_error(err->code, err->message);
    return true;
  }
  if (closing_ || !upstream_) return true;
  api::SessionRequest req;
  auto& msg = std::get<codec::CrdtMessage>(decoded);
  if (auto* patch = std::get_if<api::Patch>(&msg)) {
    *req.mutable_patch() = std::move(*patch);
  } else {
    req.mutable_sync_request()->set_from_version(std::get<codec::CrdtPull>(msg).version);
  }
  return upstream_->send(std::move(req));
}

std::shared_ptr<const std::string> WsSession::crdt_frame(const api::SessionResponse& msg) {
  auto bytes = [](std::string s) { return std::make_shared<const std::string>(std::move(s)); };
  const std::string& channel = params_.channel;
  switch (msg.kind_case()) {
    case api::SessionResponse::kOpened:
      server_id_ = msg.opened().server_id();
      return bytes(codec::encode_connected(server_id_, msg.opened().head_version(), channel));
    case api::SessionResponse::kAck:
      if (msg.ack().status() == api::Ack::REJECTED) {
        return bytes(codec::encode_error(msg.ack().code(), msg.ack().reason()));
      }
      return bytes(codec::encode_crdt_ack(server_id_, msg.ack().server_version(), channel));
    case api::SessionResponse::kBroadcast: {
      if (msg.broadcast().op() != "opaque") return nullptr;  // graph patches mean nothing here
      google::protobuf::ListValue changes;
      codec::append_changes(msg.broadcast(), &changes);
      return bytes(codec::encode_crdt_update(changes, msg.broadcast().server_version(), server_id_, channel));
    }
    case api::SessionResponse::kSyncState: {
      const api::SyncState& page = msg.sync_state();
      if (!page.requested()) return nullptr;
      // A pull is answered by one update holding every change after it.
      for (const auto& p : page.patches()) {
        if (p.op() == "opaque") codec::append_changes(p, &pull_changes_);
      }
      if (page.has_more()) return nullptr;
      auto frame = bytes(codec::encode_crdt_update(pull_changes_, page.version(), server_id_, channel));
      pull_changes_.Clear();
      return frame;
    }
    case api::SessionResponse::kError:
      return bytes(codec::encode_error(msg.error().code(), msg.error().message()));
    default:
      return nullptr;
  }
}

std::shared_ptr<const std::string> WsSession::json_frame(const api::SessionResponse& msg) {
  auto bytes = [](std::string s) { return std::make_shared<const std::string>(std::move(s)); };
  switch (msg.kind_case()) {
    case api::SessionResponse::kAck:
      return bytes(codec::encode_ack(msg.ack()));
    case api::SessionResponse::kBroadcast:  // only if the peek missed it; encode it here
      return bytes(codec::encode_broadcast(msg.broadcast()));
    case api::SessionResponse::kSyncState:
      return bytes(codec::encode_sync_state(msg.sync_state()));
    case api::SessionResponse::kError:
      return bytes(codec::encode_error(msg.error().code(), msg.error().message()));
    default:
      return nullptr;  // opened, heartbeat: nothing for the client
  }
}

bool WsSession::on_upstream_message(const api::SessionResponse& msg) {
  // On a gRPC thread: encode here, write on the strand.
  Frame frame = params_.crdt ? crdt_frame(msg) : json_frame(msg);
  return frame ? deliver(std::move(frame)) : true;
}

bool WsSession::on_upstream_broadcast(std::int64_t version, std::string_view patch) {
  if (params_.crdt) {  // rare: decode here
    api::SessionResponse msg;
    if (!msg.mutable_broadcast()->ParseFromArray(patch.data(), static_cast<int>(patch.size()))) return true;
    return on_upstream_message(msg);
  }
  Frame frame = ctx_.cache.frame(params_.channel, version, patch);
  return frame ? deliver(std::move(frame)) : true;
}

bool WsSession::deliver(Frame frame) {
  const std::size_t backlog = backlog_.fetch_add(1) + 1;
  net::post(ws_.get_executor(), [self = shared_from_this(), frame = std::move(frame)]() mutable {
    self->enqueue(std::move(frame));
  });
  if (backlog < ctx_.limits.queue_messages) return true;
  upstream_paused_ = true;
  return false;
}

void WsSession::on_upstream_done(const grpc::Status& status) {
  net::post(ws_.get_executor(), [self = shared_from_this(), status] {
    if (self->closing_ || self->closed_) return;
    const Ending e = ending_for(status.error_code());
    if (e.code != nullptr) {
      std::string message = status.error_message();
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE && message.find("retry") == std::string::npos) {
        message = "syncd is unavailable (" + message + "); reconnect shortly";
      }
      self->send_error(e.code, message);
    }
    self->begin_close(e.close, e.code == nullptr ? "done" : e.code);
  });
}

void WsSession::enqueue(Frame frame) {
  if (closed_ || closing_) {
    backlog_.fetch_sub(1);
    return;
  }
  queue_.push_back(std::move(frame));
  if (queue_.size() == 1) do_write();
}

void WsSession::send_error(std::string_view code, std::string_view message) {
  ctx_.stats.error_sent();
  backlog_.fetch_add(1);
  enqueue(std::make_shared<const std::string>(codec::encode_error(code, message)));
}

void WsSession::do_write() {
  ws_.text(true);
  ws_.async_write(net::buffer(*queue_.front()), beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
}

void WsSession::on_write(beast::error_code ec, std::size_t) {
  queue_.pop_front();
  backlog_.fetch_sub(1);
  if (ec) {
    finish();
    return;
  }
  ctx_.stats.message_out();
  if (backlog_.load() < ctx_.limits.queue_messages / 2) {
    if (upstream_paused_) {
      upstream_paused_ = false;
      upstream_->resume();
    }
    if (wait_queue_) {
      wait_queue_ = false;
      maybe_read();
    }
  }
  if (!queue_.empty()) {
    do_write();
  } else if (closing_ && !closed_) {
    closed_ = true;
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) { self->finish(); });
  }
}

void WsSession::close(websocket::close_code code, std::string reason) {
  net::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)] {
    if (code == websocket::close_code::going_away && self->upstream_) self->upstream_->cancel();
    self->begin_close(code, reason);
  });
}

void WsSession::begin_close(websocket::close_code code, std::string reason) {
  if (closing_ || closed_) return;
  closing_ = true;
  close_reason_ = websocket::close_reason(code, reason);
  if (queue_.empty()) {
    closed_ = true;
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) { self->finish(); });
  }
}

void WsSession::finish() {
  closed_ = true;
  heartbeat_timer_.cancel();
  idle_timer_.cancel();
  if (upstream_) upstream_->cancel();
  if (counted_) {
    counted_ = false;
    ctx_.stats.socket_closed(params_.channel);
    ctx_.sessions.remove(this);
  }
}

}  // namespace bridge
