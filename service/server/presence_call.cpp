#include "server/presence_call.h"

#include "server/caller.h"
#include "server/session_presence.h"

namespace syncd::server {

// The events waiting for the proxy, and the watcher that fills it. Shared
// with the presence engine, which may call it after the call is done.
class PresenceCall::Outbox final : public engine::PresenceWatcher {
 public:
  Outbox(PresenceCall* call, engine::Presence& presence) : call_(call), presence_(presence) {}

  void on_presence(const std::string& channel, const std::shared_ptr<const api::PresenceList>& full,
                   const std::vector<engine::PresenceChange>& changes) override {
    std::lock_guard lock(mu_);
    if (call_ == nullptr) return;
    const std::size_t count = (full ? 1 : 0) + changes.size();
    if (queued_ + count > kMaxQueued) {
      // The whole list replaces what did not fit, asked for at most once a
      // second per channel (a proxy that reads nothing costs no more).
      const auto now = std::chrono::steady_clock::now();
      auto& last = resent_[channel];
      if (now - last >= std::chrono::seconds(1)) {
        last = now;
        presence_.resend(channel, this);
      }
      return;
    }
    std::vector<api::PresenceEvent> events;
    if (full) {
      api::PresenceEvent e;
      e.set_channel(channel);
      *e.mutable_state() = *full;
      events.push_back(std::move(e));
    }
    for (const auto& change : changes) {
      api::PresenceEvent e;
      e.set_channel(channel);
      switch (change.kind) {
        case engine::PresenceChange::Kind::kJoin: *e.mutable_join() = change.member; break;
        case engine::PresenceChange::Kind::kUpdate: *e.mutable_update() = change.member; break;
        case engine::PresenceChange::Kind::kLeave: *e.mutable_leave() = change.member; break;
      }
      events.push_back(std::move(e));
    }
    if (batched_.count(channel) != 0 && events.size() > 1) {
      api::PresenceEvent batch;
      batch.set_channel(channel);
      for (auto& e : events) *batch.mutable_batch()->add_events() = std::move(e);
      push(std::move(batch), count);
    } else {
      for (auto& e : events) push(std::move(e), 1);
    }
    pump();
  }

  // The proxy takes this channel's events in batches.
  void set_batched(const std::string& channel, bool batched) {
    std::lock_guard lock(mu_);
    if (batched) {
      batched_.insert(channel);
    } else {
      batched_.erase(channel);
    }
  }

  // An answer to the proxy; dropped when the proxy reads nothing.
  void send(api::PresenceEvent e) {
    std::lock_guard lock(mu_);
    if (call_ == nullptr || queued_ >= kMaxQueued) return;
    push(std::move(e), 1);
    pump();
  }

  void write_done(bool ok) {
    std::lock_guard lock(mu_);
    writing_ = false;
    queued_ -= queue_.front().second;
    queue_.pop_front();
    if (!ok) {
      queue_.clear();
      queued_ = 0;
    }
    pump();
  }

  // The client stopped sending, or the server is stopping (`status`):
  // finish once what is queued is written.
  void reads_done(grpc::Status status = grpc::Status::OK) {
    std::lock_guard lock(mu_);
    if (reads_done_) return;
    reads_done_ = true;
    status_ = std::move(status);
    pump();
  }

  void detach() {
    std::lock_guard lock(mu_);
    call_ = nullptr;
  }

 private:
  void push(api::PresenceEvent e, std::size_t count) {  // requires mu_
    queue_.emplace_back(std::move(e), count);
    queued_ += count;
  }

  void pump() {  // requires mu_
    if (call_ == nullptr || writing_ || finished_) return;
    if (!queue_.empty()) {
      writing_ = true;
      call_->StartWrite(&queue_.front().first);
    } else if (reads_done_) {
      finished_ = true;
      call_->Finish(status_);
    }
  }

  std::mutex mu_;
  PresenceCall* call_;  // null once the call is done
  engine::Presence& presence_;
  // Each message with the events it holds; the front is in flight while writing_.
  std::deque<std::pair<api::PresenceEvent, std::size_t>> queue_;
  std::size_t queued_ = 0;                // events in queue_ (a batch counts each)
  std::set<std::string> batched_;         // channels watched with `batch`
  bool writing_ = false;
  bool reads_done_ = false;
  bool finished_ = false;
  grpc::Status status_;
  std::map<std::string, std::chrono::steady_clock::time_point> resent_;  // at most one per watched channel
};

bool PresenceCalls::add(PresenceCall* call) {
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  calls_.insert(call);
  return true;
}

void PresenceCalls::remove(PresenceCall* call) {
  std::lock_guard lock(mu_);
  calls_.erase(call);
}

void PresenceCalls::shut_down() {
  std::lock_guard lock(mu_);  // a call's OnDone waits, so none is deleted meanwhile
  stopping_ = true;
  for (PresenceCall* call : calls_) call->shut_down();
}

void PresenceCall::shut_down() {
  outbox_->reads_done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; reconnect"));
}

PresenceCall::PresenceCall(Context& ctx, grpc::CallbackServerContext* call)
    : ctx_(ctx), outbox_(std::make_shared<Outbox>(this, ctx.presence)) {
  if (ctx_.stopping) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; retry"));
    return;
  }
  auto who = authenticate(ctx_, call);
  if (auto* status = std::get_if<grpc::Status>(&who)) {
    Finish(*status);
    return;
  }
  principal_ = std::get<auth::Principal>(std::move(who));
  // A proxy's stream counts as one of its subject's Watches (a bridge's own
  // subject is usually uncapped).
  auto place = ctx_.caps.admit(StreamCaps::Kind::kWatch, principal_, call);
  if (auto* status = std::get_if<grpc::Status>(&place)) {
    Finish(*status);
    return;
  }
  place_ = std::get<auth::KeyedCap::Hold>(std::move(place));
  prefix_ = principal_.subject + "/";
  if (!ctx_.presence_calls.add(this)) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; retry"));
    return;
  }
  StartRead(&request_);
}

void PresenceCall::OnReadDone(bool ok) {
  if (!ok) return outbox_->reads_done();
  handle(request_);
  StartRead(&request_);
}

void PresenceCall::handle(const api::PresenceRequest& r) {
  switch (r.kind_case()) {
    case api::PresenceRequest::kConnect:
      return connect(r.connect());
    case api::PresenceRequest::kSet: {
      const std::string* id = find(r.set().channel(), r.set().connection_id());
      if (id == nullptr) return;
      if (auto e = presence_state_error(r.set().state())) {
        return error(r.set().channel(), r.set().connection_id(), "invalid_message", *e);
      }
      return ctx_.presence.set_state(r.set().channel(), *id, r.set().state());
    }
    case api::PresenceRequest::kPosition: {
      const auto& p = r.position();
      const std::string* id = find(p.channel(), p.connection_id());
      if (id == nullptr) return;
      return ctx_.presence.position(p.channel(), *id, std::max<std::int64_t>(0, p.delivered_version()),
                                    std::max<std::int64_t>(0, p.applied_version()));
    }
    case api::PresenceRequest::kDisconnect: {
      const auto key = std::make_pair(r.disconnect().channel(), r.disconnect().connection_id());
      auto it = connections_.find(key);
      if (it == connections_.end()) return;  // already gone: nothing to do
      ctx_.presence.disconnect(key.first, it->second, this);
      connections_.erase(it);
      return;
    }
    case api::PresenceRequest::kWatch: {
      const std::string& channel = r.watch().channel();
      if (!graph::valid_channel_name(channel)) {
        return error(channel, "", "invalid_message", "channel names are 1-128 characters of [A-Za-z0-9._:-]");
      }
      if (!principal_.can_read(channel)) return error(channel, "", "forbidden", forbidden(principal_, "read", channel).error_message());
      if (watched_.size() >= kMaxWatched && watched_.count(channel) == 0) {
        return error(channel, "", "rate_limited",
                     "at most " + std::to_string(kMaxWatched) + " channels watched per Presence stream; open another");
      }
      outbox_->set_batched(channel, r.watch().batch());
      if (watched_.insert(channel).second) ctx_.presence.watch(channel, outbox_);
      return;
    }
    case api::PresenceRequest::kUnwatch:
      outbox_->set_batched(r.unwatch().channel(), false);
      if (watched_.erase(r.unwatch().channel()) > 0) ctx_.presence.unwatch(r.unwatch().channel(), outbox_.get());
      return;
    case api::PresenceRequest::kBatch:
      for (const api::PresenceRequest& each : r.batch().requests()) {
        if (each.has_batch()) {
          error("", "", "invalid_message", "a batch may not hold a batch");
        } else {
          handle(each);
        }
      }
      return;
    case api::PresenceRequest::KIND_NOT_SET:
      return error("", "", "unknown_type",
                   "the message holds none of connect, set, position, disconnect, watch, unwatch, batch");
  }
}

void PresenceCall::connect(const api::PresenceConnect& c) {
  const std::string& channel = c.channel();
  std::optional<std::string> problem;
  if (!graph::valid_channel_name(channel)) problem = "channel names are 1-128 characters of [A-Za-z0-9._:-]";
  if (!problem && (c.connection_id().empty() || client_id_error(c.connection_id()))) {
    problem = "connection_id must be 1-128 bytes with no control characters";
  }
  if (!problem) problem = client_id_error(c.client_id());
  if (!problem && c.transport() != "ws" && c.transport() != "crdt" && c.transport() != "socketio" &&
      c.transport() != "grpc") {
    problem = "transport must be ws, crdt, socketio or grpc";
  }
  if (!problem && c.has_state()) problem = presence_state_error(c.state());
  if (!problem && connections_.size() >= kMaxConnections) {
    problem = "at most " + std::to_string(kMaxConnections) + " connections per Presence stream; open another";
  }
  if (!problem && connections_.count({channel, c.connection_id()}) != 0) problem = "this connection_id is connected already";
  if (problem) return error(channel, c.connection_id(), "invalid_message", *problem);
  // The member is who its own token says; the proxy vouches for nothing.
  auto who = authenticate_token(ctx_, c.authorization());
  if (auto* status = std::get_if<grpc::Status>(&who)) {
    return error(channel, c.connection_id(), "unauthenticated", status->error_message());
  }
  const auth::Principal& member_principal = std::get<auth::Principal>(who);
  if (!member_principal.can_read(channel)) {
    return error(channel, c.connection_id(), "forbidden", forbidden(member_principal, "read", channel).error_message());
  }
  if (member_principal.authenticated() && !c.client_id().empty() && c.client_id() != member_principal.subject) {
    return error(channel, c.connection_id(), "forbidden",
                 "clientId must be the token's subject \"" + member_principal.subject + "\"");
  }
  api::PresenceMember m;
  // The proxy's id, stable across its reconnections (to any instance), so a
  // re-announced connection replaces its row instead of appearing twice;
  // prefixed so that a proxy can only name connections of its own token.
  m.set_connection_id(prefix_ + c.connection_id());
  m.set_client_id(c.client_id().empty() ? member_principal.subject : c.client_id());
  m.set_subject(member_principal.subject);
  m.set_transport(c.transport());
  *m.mutable_state() = c.state();
  connections_.emplace(std::make_pair(channel, c.connection_id()), m.connection_id());
  ctx_.presence.connect(channel, std::move(m), this);
}

const std::string* PresenceCall::find(const std::string& channel, const std::string& connection_id) {
  auto it = connections_.find({channel, connection_id});
  if (it != connections_.end()) return &it->second;
  error(channel, connection_id, "not_found", "connect this connection_id on this channel first");
  return nullptr;
}

void PresenceCall::error(const std::string& channel, const std::string& connection_id, const std::string& code,
                         const std::string& message) {
  api::PresenceEvent e;
  e.set_channel(channel);
  e.set_connection_id(connection_id);
  e.mutable_error()->set_code(code);
  e.mutable_error()->set_message(message);
  outbox_->send(std::move(e));
}

void PresenceCall::OnWriteDone(bool ok) { outbox_->write_done(ok); }

void PresenceCall::OnDone() {
  ctx_.presence_calls.remove(this);
  place_ = {};
  outbox_->detach();
  for (const std::string& channel : watched_) ctx_.presence.unwatch(channel, outbox_.get());
  for (const auto& [key, id] : connections_) ctx_.presence.disconnect(key.first, id, this);
  delete this;
}

}  // namespace syncd::server
