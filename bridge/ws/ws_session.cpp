#include "ws/ws_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "auth/token_format.h"
#include "codec/crdt_codec.h"
#include "codec/json_codec.h"
#include "upstream/calls.h"
#include "ws/text_frame.h"
#include "ws/token_claims.h"

namespace bridge {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {

// Patches taken from the client and not yet answered, before reading from
// it pauses; and the most one Push carries (syncd allows 1000 and 4 MiB).
constexpr std::size_t kMaxOutbox = 1000;
constexpr int kMaxPushPatches = 500;
constexpr std::size_t kMaxPushBytes = 2 << 20;

// How an ended call reaches the client: an error code for the error frame
// and a close code. 1013 ("try again later") for anything a retry can fix.
struct Ending {
  const char* code;
  websocket::close_code close;
};

Ending ending_for(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION: return {"invalid_message", websocket::close_code::policy_error};
    case grpc::StatusCode::UNAUTHENTICATED: return {"unauthenticated", websocket::close_code::policy_error};
    case grpc::StatusCode::PERMISSION_DENIED: return {"forbidden", websocket::close_code::policy_error};
    case grpc::StatusCode::NOT_FOUND: return {"not_found", websocket::close_code::policy_error};
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return {"rate_limited", websocket::close_code::try_again_later};
    case grpc::StatusCode::DEADLINE_EXCEEDED:
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
    : ctx_(ctx),
      ws_(std::move(stream)),
      idle_timer_(ws_.get_executor()),
      expiry_timer_(ws_.get_executor()),
      read_timer_(ws_.get_executor()) {}

WsSession::~WsSession() = default;

template <class Fn>
void WsSession::on_strand(Fn&& fn) {
  net::post(ws_.get_executor(), [self = shared_from_this(), fn = std::forward<Fn>(fn)]() mutable { fn(*self); });
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
  do_read();
  if (!params_.error.empty()) {
    send_error("invalid_message", params_.error);
    begin_close(websocket::close_code::policy_error, "bad query");
    return;
  }
  address_hold_ = ctx_.per_address.take(params_.address);
  if (!address_hold_) {
    send_error("rate_limited", "this address already has " + std::to_string(ctx_.per_address.limit()) +
                                   " sockets open (the bridge's --max-sockets-per-address); close one first");
    begin_close(websocket::close_code::policy_error, "too many sockets");
    return;
  }
  if (!params_.auth_error.empty()) {
    spdlog::debug("socket from {} refused: {}", params_.address, params_.auth_error);
    send_error("unauthenticated", params_.auth_error);
    begin_close(websocket::close_code::policy_error, "unauthenticated");
    return;
  }
  if (ctx_.stopping) {
    send_error("unavailable", "the bridge is shutting down; reconnect");
    begin_close(websocket::close_code::try_again_later, "shutting down");
    return;
  }
  if (!params_.authorization.empty()) {
    // syncd checks the token on the first read below; here we only learn
    // whom it names and when to close.
    auto claims = read_claims(params_.authorization);
    if (claims) subject_ = claims->subject;
    if (claims && claims->expires) watch_expiry();
  }
  seq_ = Sequencer(params_.since);
  feed_ = ctx_.feeds->subscribe(params_.channel, std::weak_ptr<WsSession>(shared_from_this()));
}

// ---- The channel side ------------------------------------------------------

void WsSession::on_feed_ready(std::int64_t) {
  on_strand([](WsSession& s) {
    s.ready_ = true;
    s.read_history();
  });
}

void WsSession::on_feed_item(upstream::Item item) {
  if (skipping_.load(std::memory_order_relaxed)) return;
  bool first;
  {
    std::lock_guard lock(inbox_mu_);
    if (inbox_.size() >= ctx_.limits.queue_messages) {
      // The strand is this far behind the feed: stop taking it, catch up from the log.
      inbox_.clear();
      if (!skipping_.exchange(true)) on_strand([](WsSession& s) { s.fell_behind(); });
      return;
    }
    first = inbox_.empty();
    inbox_.push_back(std::move(item));
  }
  if (first) on_strand([](WsSession& s) { s.take_inbox(); });
}

void WsSession::take_inbox() {
  boost::container::deque<upstream::Item> items;
  {
    std::lock_guard lock(inbox_mu_);
    items.swap(inbox_);
  }
  for (auto& item : items) on_item(std::move(item));
}

void WsSession::fell_behind() {
  if (mode_ == Mode::kJoining) {
    // Still reading the log: read it once more, and keep buffering.
    buffered_.clear();
    reread_ = true;
    skipping_ = false;
  } else {
    mode_ = Mode::kBehind;
    rejoin_if_drained();  // else on_drained does, once the queue drains
  }
}

// A socket behind the feed joins again from its last version once its
// client has taken most of what it was sent.
void WsSession::rejoin_if_drained() {
  if (mode_ != Mode::kBehind || queue_.size() >= ctx_.limits.queue_messages / 2) return;
  mode_ = Mode::kJoining;
  buffered_.clear();
  reread_ = false;
  skipping_ = false;
  read_history();
}

void WsSession::on_feed_done(const grpc::Status& status) {
  on_strand([status](WsSession& s) {
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      // The bridge's own token, not the client's: nothing the client can fix.
      s.end_with(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "the bridge cannot watch this channel (syncd refused its token); try again later"));
    } else {
      s.end_with(status);
    }
  });
}

void WsSession::on_item(upstream::Item item) {
  if (closing_ || closed_) return;
  switch (mode_) {
    case Mode::kJoining:
      if (buffered_.size() >= ctx_.limits.queue_messages) {
        // Too much arrives while the log is read: drop it, read the log again.
        buffered_.clear();
        reread_ = true;
      }
      buffered_.push_back(std::move(item));
      return;
    case Mode::kBehind:
      return;  // read from the log when the client has caught up
    case Mode::kLive: {
      std::vector<Sequencer::Out> outs;
      seq_.patch(std::move(item), outs);
      emit(outs);
      if (queue_.size() >= ctx_.limits.queue_messages) {
        mode_ = Mode::kBehind;
        skipping_ = true;
      }
      return;
    }
  }
}

// One step of joining: the head for since=head and /crdt, else a page of
// the log after the client's version. Waits for the feed's origin (so the
// log read covers everything the feed will not deliver) and for the
// client to take what it was sent.
void WsSession::read_history() {
  if (!ready_ || reading_history_ || closing_ || closed_ || mode_ != Mode::kJoining) return;
  if (queue_.size() >= ctx_.limits.queue_messages / 2) return;  // on_drained calls again
  reading_history_ = true;
  if (first_join_ && (params_.head || params_.crdt)) {
    api::GetChannelInfoRequest req;
    req.set_channel(params_.channel);
    upstream::channel_info(*ctx_.stub, params_.authorization, std::move(req),
                           [self = shared_from_this()](const grpc::Status& status, api::ChannelInfo&& info) {
                             self->on_strand([status, info = std::move(info)](WsSession& s) { s.on_info(status, info); });
                           });
    return;
  }
  api::GetChangesRequest req;
  req.set_channel(params_.channel);
  req.set_from_version(seq_.cursor());
  upstream::get_changes(*ctx_.stub, params_.authorization, std::move(req),
                        [self = shared_from_this()](const grpc::Status& status, api::GetChangesResponse&& page) {
                          self->on_strand([status, page = std::move(page)](WsSession& s) mutable {
                            s.on_page(status, page);
                          });
                        });
}

void WsSession::on_info(const grpc::Status& status, const api::ChannelInfo& info) {
  reading_history_ = false;
  if (closing_ || closed_) return;
  if (!status.ok()) {
    end_with(status);
    return;
  }
  if (!admit_subject()) return;
  first_join_ = false;
  seq_.skip_to(info.head_version());
  if (params_.crdt) {
    server_id_ = info.server_id();
    enqueue(std::make_shared<const std::string>(
        codec::encode_connected(server_id_, info.head_version(), params_.channel)));
  } else {
    // No history, but the client still learns where the channel stands.
    api::SyncState state;
    state.set_version(info.head_version());
    enqueue(std::make_shared<const std::string>(codec::encode_sync_state(state)));
  }
  if (reread_) {
    reread_ = false;
    read_history();
  } else {
    go_live();
  }
}

void WsSession::on_page(const grpc::Status& status, api::GetChangesResponse& page) {
  reading_history_ = false;
  if (closing_ || closed_) return;
  // Compacted history, or a client past the head (a channel deleted and
  // recreated): the client gets the channel's state instead.
  const bool ahead = status.ok() && first_join_ && page.patches().empty() && page.version() < seq_.cursor();
  if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE || ahead) {
    reading_history_ = true;
    return params_.crdt ? skip_compacted(false) : read_snapshot(false);
  }
  if (!status.ok()) {
    end_with(status);
    return;
  }
  if (!admit_subject()) return;
  bool more = page.has_more();
  if (!more && reread_) {
    reread_ = false;
    more = true;
  }
  if (first_join_) {
    // The client's history, as the protocol's sync_state pages.
    api::SyncState state;
    state.set_version(page.version());
    state.set_has_more(more);
    state.mutable_patches()->Swap(page.mutable_patches());
    seq_.skip_to(page.version());
    enqueue(std::make_shared<const std::string>(codec::encode_sync_state(state)));
  } else {
    // Catching up after falling behind: the same frames live delivery sends.
    std::vector<Sequencer::Out> outs;
    for (auto& p : *page.mutable_patches()) seq_.patch(upstream::make_item(std::move(p)), outs);
    emit(outs);
    if (!more && snapshot_open_) {
      // A snapshot sent mid-stream ends like a join's history: with a page
      // saying there is no more, so the client knows its state is whole.
      api::SyncState state;
      state.set_version(page.version());
      enqueue(std::make_shared<const std::string>(codec::encode_sync_state(state)));
    }
  }
  if (!more) snapshot_open_ = false;
  if (more) {
    read_history();
  } else {
    go_live();
  }
}

void WsSession::read_snapshot(bool requested) {
  api::GetSnapshotRequest req;
  req.set_channel(params_.channel);
  upstream::get_snapshot(*ctx_.stub, params_.authorization, std::move(req),
                         [self = shared_from_this(), requested](const grpc::Status& status,
                                                                std::vector<api::SnapshotPage>&& pages) {
                           self->on_strand([status, requested, pages = std::move(pages)](WsSession& s) mutable {
                             s.on_snapshot(status, pages, requested);
                           });
                         });
}

// The snapshot's pages, each at its version V, the first marked so the
// client replaces its state; all say hasMore, since the log after V
// follows (from the same path that asked for the snapshot).
void WsSession::on_snapshot(const grpc::Status& status, std::vector<api::SnapshotPage>& pages, bool requested) {
  (requested ? sync_running_ : reading_history_) = false;
  if (closing_ || closed_) return;
  if (!status.ok() || pages.empty()) {
    if (requested && status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
      return send_error(ending_for(status.error_code()).code, status.error_message());
    }
    return end_with(status.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "an empty snapshot stream") : status);
  }
  const std::int64_t version = pages.front().version();
  for (std::size_t i = 0; i < pages.size(); ++i) {
    api::SyncState state;
    state.set_version(version);
    state.set_has_more(true);
    state.set_requested(requested);
    state.set_snapshot(i == 0);
    state.mutable_patches()->Swap(pages[i].mutable_patches());
    enqueue(std::make_shared<const std::string>(codec::encode_sync_state(state)));
  }
  if (requested) {
    if (!sync_pending_) {  // the log after V, unless a newer request replaced this one
      sync_pending_ = true;
      sync_from_ = version;
    }
    return next_sync();
  }
  snapshot_open_ = !first_join_;
  std::vector<Sequencer::Out> outs;
  seq_.restart_at(version, outs);
  emit(outs);
  read_history();
}

// A CRDT client's history was compacted with force: it gets what remains,
// from the horizon on.
void WsSession::skip_compacted(bool pull) {
  api::GetChannelInfoRequest req;
  req.set_channel(params_.channel);
  upstream::channel_info(*ctx_.stub, params_.authorization, std::move(req),
                         [self = shared_from_this(), pull](const grpc::Status& status, api::ChannelInfo&& info) {
                           self->on_strand([status, pull, horizon = info.compacted_through()](WsSession& s) {
                             (pull ? s.sync_running_ : s.reading_history_) = false;
                             if (s.closing_ || s.closed_) return;
                             if (!status.ok()) return s.end_with(status);
                             if (pull) {
                               s.sync_from_ = std::max(s.sync_from_, horizon);
                               s.sync_pending_ = true;
                               return s.next_sync();
                             }
                             s.seq_.skip_to(horizon);
                             s.read_history();
                           });
                         });
}

// Counted per subject only once syncd has accepted the token, so a forged
// token naming someone else cannot use up their sockets.
bool WsSession::admit_subject() {
  if (subject_hold_ || subject_.empty()) return true;
  subject_hold_ = ctx_.per_subject.take(subject_);
  if (subject_hold_) return true;
  send_error("rate_limited", "this token's subject already has " + std::to_string(ctx_.per_subject.limit()) +
                                 " sockets open (the bridge's --max-sockets-per-subject); close one first");
  begin_close(websocket::close_code::policy_error, "too many sockets");
  return false;
}

void WsSession::go_live() {
  first_join_ = false;
  live_once_ = true;
  mode_ = Mode::kLive;
  std::vector<Sequencer::Out> outs;
  for (auto& item : buffered_) seq_.patch(std::move(item), outs);
  buffered_.clear();
  emit(outs);
  push_next();
}

WsSession::Frame WsSession::broadcast_frame(const upstream::Item& item) {
  if (!params_.crdt) return item->frame;
  if (item->patch.op() != "opaque") return nullptr;  // graph patches mean nothing here
  google::protobuf::ListValue changes;
  codec::append_changes(item->patch, &changes);
  return std::make_shared<const std::string>(
      codec::encode_crdt_update(changes, item->version, server_id_, params_.channel));
}

WsSession::Frame WsSession::ack_frame(const api::Ack& ack) {
  if (!params_.crdt) return std::make_shared<const std::string>(codec::encode_ack(ack));
  if (ack.status() == api::Ack::REJECTED) {
    return std::make_shared<const std::string>(codec::encode_error(ack.code(), ack.reason()));
  }
  return std::make_shared<const std::string>(
      codec::encode_crdt_ack(server_id_, ack.server_version(), params_.channel));
}

void WsSession::emit(std::vector<Sequencer::Out>& outs) {
  for (auto& out : outs) {
    Frame frame = out.broadcast ? broadcast_frame(out.broadcast) : ack_frame(out.ack);
    if (frame) enqueue(std::move(frame));
  }
  outs.clear();
}

// ---- Requests upstream -----------------------------------------------------

// A patch over syncd's size limit is refused here, as syncd would refuse
// it, without crossing to syncd: a megabyte Push would share the one
// connection to syncd with every channel's feed.
void WsSession::reject_too_large(const std::string& id, const std::string& size) {
  // A rejected ack holds no version: it goes out at once, as syncd's would.
  api::Ack ack;
  ack.set_patch_id(id);
  ack.set_status(api::Ack::REJECTED);
  ack.set_server_version(seq_.cursor());
  ack.set_code("too_large");
  ack.set_reason("patch is " + size + " bytes; the limit is " + std::to_string(ctx_.limits.parse.max_patch_bytes));
  if (Frame frame = ack_frame(ack)) enqueue(std::move(frame));
}

void WsSession::submit(api::Patch patch) {
  const std::size_t size = patch.ByteSizeLong();
  if (ctx_.limits.parse.max_patch_bytes > 0 && size > ctx_.limits.parse.max_patch_bytes) {
    reject_too_large(patch.id(), std::to_string(size));
    return;
  }
  outbox_.push_back(std::move(patch));
  push_next();
}

// One Push at a time, so the channel stores a socket's patches in the order
// it sent them; what queues meanwhile goes in the next batch.
void WsSession::push_next() {
  if (pushing_ || outbox_.empty() || !live_once_ || closing_ || closed_) return;
  api::PushRequest req;
  req.set_channel(params_.channel);
  std::vector<std::string> ids;
  std::size_t bytes = 0;
  while (!outbox_.empty() && req.patches_size() < kMaxPushPatches &&
         (req.patches_size() == 0 || bytes + outbox_.front().ByteSizeLong() <= kMaxPushBytes)) {
    bytes += outbox_.front().ByteSizeLong();
    ids.push_back(outbox_.front().id());
    seq_.sent(ids.back());
    *req.add_patches() = std::move(outbox_.front());
    outbox_.pop_front();
  }
  pushing_ = true;
  upstream::push(*ctx_.stub, params_.authorization, std::move(req),
                 [self = shared_from_this(), ids = std::move(ids)](const grpc::Status& status,
                                                                   api::PushResponse&& response) mutable {
                   self->on_strand([status, response = std::move(response), ids = std::move(ids)](WsSession& s) {
                     s.on_pushed(status, response, ids);
                   });
                 });
}

void WsSession::on_pushed(const grpc::Status& status, const api::PushResponse& response,
                          const std::vector<std::string>& ids) {
  pushing_ = false;
  std::vector<Sequencer::Out> outs;
  if (status.ok() && response.acks_size() == static_cast<int>(ids.size())) {
    for (const auto& ack : response.acks()) seq_.answered(ack, outs);
  } else if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    // No write access to the channel at all: each patch is refused, as a
    // patch-level problem (the socket may still read).
    for (const auto& id : ids) {
      api::Ack ack;
      ack.set_patch_id(id);
      ack.set_status(api::Ack::REJECTED);
      ack.set_server_version(seq_.cursor());
      ack.set_code("forbidden");
      ack.set_reason(status.error_message());
      seq_.answered(ack, outs);
    }
  } else {
    for (const auto& id : ids) seq_.abandoned(id, outs);
  }
  emit(outs);
  if (!status.ok() && status.error_code() != grpc::StatusCode::PERMISSION_DENIED) {
    // The push's outcome is unknown (some of its patches may be stored).
    // Closing is what every client understands: it reconnects from its
    // version and resends what is unanswered, and a stored patch then
    // comes back `ignored` or in the history. An error frame alone would
    // leave those patches pending on an open socket.
    const std::size_t unanswered = ids.size();
    end_with(status.error_code() == grpc::StatusCode::UNAUTHENTICATED
                 ? status
                 : grpc::Status(status.error_code(),
                                status.error_message() + " (" + std::to_string(unanswered) +
                                    " patches unanswered; reconnect and resend them: duplicates are answered "
                                    "`ignored`)"));
    return;
  }
  if (wait_outbox_ && outbox_.size() < kMaxOutbox / 2) {
    wait_outbox_ = false;
    maybe_read();
  }
  push_next();
}

// A newer request replaces one not yet started: the client wants the log
// from its latest position.
void WsSession::request_sync(std::int64_t from, int limit, bool crdt_pull) {
  sync_pending_ = true;
  sync_from_ = std::max<std::int64_t>(from, 0);
  sync_limit_ = limit;
  sync_crdt_ = crdt_pull;
  next_sync();
}

void WsSession::next_sync() {
  if (sync_running_ || !sync_pending_ || closing_ || closed_) return;
  if (queue_.size() >= ctx_.limits.queue_messages / 2) return;  // on_drained calls again
  sync_pending_ = false;
  sync_running_ = true;
  api::GetChangesRequest req;
  req.set_channel(params_.channel);
  req.set_from_version(sync_from_);
  req.set_limit(sync_limit_);
  upstream::get_changes(
      *ctx_.stub, params_.authorization, std::move(req),
      [self = shared_from_this()](const grpc::Status& status, api::GetChangesResponse&& page) {
        self->on_strand([status, page = std::move(page)](WsSession& s) mutable {
          s.sync_running_ = false;
          if (s.closing_ || s.closed_) return;
          if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
            s.sync_running_ = true;
            return s.sync_crdt_ ? s.skip_compacted(true) : s.read_snapshot(true);
          }
          if (!status.ok()) {
            if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) return s.end_with(status);
            return s.send_error(ending_for(status.error_code()).code, status.error_message());
          }
          if (!s.sync_crdt_) {
            api::SyncState state;
            state.set_version(page.version());
            state.set_has_more(page.has_more());
            state.set_requested(true);
            state.mutable_patches()->Swap(page.mutable_patches());
            s.enqueue(std::make_shared<const std::string>(codec::encode_sync_state(state)));
            // The rest follows page by page, unless a newer request replaced it.
            if (state.has_more() && !s.sync_pending_) {
              s.sync_pending_ = true;
              s.sync_from_ = state.version();
            }
          } else {
            // A pull is answered by one update holding every change after it.
            for (const auto& p : page.patches()) {
              if (p.op() == "opaque") codec::append_changes(p, &s.pull_changes_);
            }
            if (page.has_more() && !s.sync_pending_) {
              s.sync_pending_ = true;
              s.sync_from_ = page.version();
              return s.next_sync();
            }
            s.enqueue(std::make_shared<const std::string>(
                codec::encode_crdt_update(s.pull_changes_, page.version(), s.server_id_, s.params_.channel)));
            s.pull_changes_.Clear();
          }
          s.next_sync();
        });
      });
}

// A new token for this socket: it must name the same subject, and syncd
// must accept it for the channel; then it replaces the old one.
void WsSession::refresh(std::string token) {
  const auto checked = syncd::auth::bearer_token(token);
  if (!checked.ok()) {
    end_with(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, checked.error));
    return;
  }
  std::string authorization = syncd::auth::authorization_value(checked.token);
  auto claims = read_claims(authorization);
  if (!claims || claims->subject != subject_) {
    end_with(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "a refreshed token must be a JWT for the same subject as the first"));
    return;
  }
  api::GetChannelInfoRequest req;
  req.set_channel(params_.channel);
  upstream::channel_info(*ctx_.stub, authorization, std::move(req),
                         [self = shared_from_this(), authorization, expires = claims->expires](
                             const grpc::Status& status, api::ChannelInfo&&) {
                           self->on_strand([status, authorization, expires](WsSession& s) {
                             if (!status.ok()) return s.end_with(status);
                             s.params_.authorization = authorization;
                             if (expires) {
                               s.watch_expiry();
                             } else {
                               s.expiry_timer_.cancel();
                             }
                           });
                         });
}

// Closes the socket when its token expires, as syncd closes its own streams.
void WsSession::watch_expiry() {
  auto claims = read_claims(params_.authorization);
  if (!claims || !claims->expires) return;
  // A far expiry (exp may say the year 9999) is waited for a day at a time.
  const auto left = std::min<std::chrono::system_clock::duration>(
      *claims->expires - std::chrono::system_clock::now(), std::chrono::hours(24));
  expiry_timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(left));
  expiry_timer_.async_wait([self = shared_from_this(), expires = *claims->expires](beast::error_code ec) {
    if (ec || self->closing_ || self->closed_) return;  // refreshed, or closed
    auto now = read_claims(self->params_.authorization);
    if (now && now->expires && *now->expires > expires) return;  // a refresh raced the timer
    if (std::chrono::system_clock::now() < expires) return self->watch_expiry();
    self->end_with(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                "the token expired; send an auth frame with a new token before the old one "
                                "expires, or reconnect with a new token"));
  });
}

// ---- The client side -------------------------------------------------------

void WsSession::watch_idle() {
  const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.limits.idle_timeout);
  idle_timer_.expires_after(std::max(std::chrono::milliseconds(100), idle / 4));
  idle_timer_.async_wait([self = shared_from_this(), idle](beast::error_code ec) {
    if (ec || self->closed_) return;
    if (std::chrono::steady_clock::now() - self->last_heard_ > idle) {
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
  if (!ws_.got_text()) {
    send_error("invalid_message", "binary frames are not supported; send JSON text frames");
  } else {
    const auto data = buffer_.cdata();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    if (params_.crdt) {
      handle_crdt_frame(text);
    } else {
      handle_frame(text);
    }
  }
  charge_read(buffer_.size());
  buffer_.consume(buffer_.size());
  reading_ = false;
  if (outbox_.size() >= kMaxOutbox) wait_outbox_ = true;
  if (queue_.size() >= ctx_.limits.queue_messages) wait_queue_ = true;
  maybe_read();
}

void WsSession::maybe_read() {
  if (reading_ || wait_outbox_ || wait_queue_ || wait_rate_ || closed_) return;
  do_read();
}

// A frame's cost is paid for at the read rate; up to one second's worth
// (or one largest frame) may run ahead, then reading waits for the clock.
void WsSession::charge_read(std::size_t bytes) {
  const std::size_t rate = ctx_.limits.read_bytes_per_second;
  if (rate == 0) return;
  using namespace std::chrono;
  const auto cost = [rate](std::size_t b) {
    return duration_cast<steady_clock::duration>(duration<double>(static_cast<double>(b) / static_cast<double>(rate)));
  };
  const auto now = steady_clock::now();
  read_paid_until_ = std::max(read_paid_until_, now) + cost(std::max(bytes, kMinFrameCost));
  const auto resume = read_paid_until_ - cost(std::max(rate, ctx_.limits.max_frame_bytes));
  if (resume <= now) return;
  wait_rate_ = true;
  read_timer_.expires_at(resume);
  read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec) return;  // the socket is done
    self->wait_rate_ = false;
    self->maybe_read();
  });
}

void WsSession::handle_frame(std::string_view text) {
  auto decoded = codec::decode_client_frame(text, ctx_.limits.parse);
  if (auto* err = std::get_if<codec::Error>(&decoded)) {
    send_error(err->code, err->message);
    return;
  }
  if (closing_ || !feed_) return;
  auto& msg = std::get<codec::ClientMessage>(decoded);
  if (auto* patch = std::get_if<api::Patch>(&msg)) {
    submit(std::move(*patch));
  } else if (auto* big = std::get_if<codec::OversizePatch>(&msg)) {
    reject_too_large(big->id, "at least " + std::to_string(big->bytes));
  } else if (auto* sync = std::get_if<api::SyncRequest>(&msg)) {
    request_sync(sync->from_version(), sync->limit(), false);
  } else if (auto* r = std::get_if<api::Refresh>(&msg)) {
    refresh(r->token());
  }
  // A heartbeat: the read itself counted as life.
}

void WsSession::handle_crdt_frame(std::string_view text) {
  auto decoded = codec::decode_crdt_frame(text, params_.channel, ctx_.limits.parse);
  if (auto* err = std::get_if<codec::Error>(&decoded)) {
    send_error(err->code, err->message);
    return;
  }
  if (closing_ || !feed_) return;
  auto& msg = std::get<codec::CrdtMessage>(decoded);
  if (auto* patch = std::get_if<api::Patch>(&msg)) {
    submit(std::move(*patch));
  } else {
    request_sync(std::get<codec::CrdtPull>(msg).version, 0, true);
  }
}

// ---- Frames to the client --------------------------------------------------

void WsSession::enqueue(Frame frame) {
  if (closed_ || closing_) return;
  queue_.push_back(std::move(frame));
  if (!waiting_room_) write_queue();
}

void WsSession::send_error(std::string_view code, std::string_view message) {
  ctx_.stats.error_sent();
  enqueue(std::make_shared<const std::string>(codec::encode_error(code, message)));
}

// Hands queued frames to the stream until it is full (see CoalescingStream),
// then does what a drained queue allows: read the client again, read the
// log, close.
void WsSession::write_queue() {
  auto& out = ws_.next_layer();
  while (!queue_.empty()) {
    if (out.error() || !ws_.is_open()) {
      // The client is gone, or Beast is closing the stream (its close frame
      // may already be out: nothing may follow it). The read ends too.
      queue_.clear();
      if (out.error()) finish();
      return;
    }
    const std::string& text = *queue_.front();
    if (!out.try_append(TextFrameHeader(text.size()).bytes(), text)) {
      waiting_room_ = true;
      out.when_room([self = shared_from_this()] {
        self->waiting_room_ = false;
        self->write_queue();
      });
      return;
    }
    queue_.pop_front();
    ctx_.stats.message_out();
    if (queue_.size() < ctx_.limits.queue_messages / 2 && !drain_posted_ &&
        (mode_ != Mode::kLive || sync_pending_ || wait_queue_)) {
      // Posted, never run here: this may be inside the handler that
      // enqueued (a history page, say), which has yet to settle the mode
      // these steps depend on.
      drain_posted_ = true;
      on_strand([](WsSession& s) {
        s.drain_posted_ = false;
        s.on_drained();
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
  rejoin_if_drained();
  if (mode_ == Mode::kJoining) read_history();
  next_sync();
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
  on_strand([code, reason = std::move(reason)](WsSession& s) { s.begin_close(code, reason); });
}

void WsSession::begin_close(websocket::close_code code, std::string reason) {
  if (closing_ || closed_) return;
  closing_ = true;
  close_reason_ = websocket::close_reason(code, reason);
  feed_.reset();  // nothing more is sent: stop taking the channel's patches
  if (queue_.empty()) {
    closed_ = true;
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) { self->finish(); });
  }
}

void WsSession::finish() {
  closed_ = true;
  idle_timer_.cancel();
  expiry_timer_.cancel();
  read_timer_.cancel();
  feed_.reset();
  address_hold_ = {};
  subject_hold_ = {};
  if (counted_) {
    counted_ = false;
    ctx_.stats.socket_closed(params_.channel);
    ctx_.sessions.remove(this);
  }
}

}  // namespace bridge
