#include "socket/socket_presence.h"

#include <algorithm>

#include "graph/check.h"

namespace bridge {

namespace {

constexpr double kUpdatesPerSecond = 20;

}  // namespace

SocketPresence::SocketPresence(presence::PresenceLink& link, std::string channel, delivery::Post post, Client* client)
    : link_(link), channel_(std::move(channel)), post_(std::move(post)), client_(client) {}

void SocketPresence::join(const std::string& client_id, const std::string& transport,
                          const std::string& authorization) {
  if (!id_.empty()) return;
  id_ = link_.next_id();
  api::PresenceConnect c;
  // Only the fields that have a value: each set string costs the entry,
  // kept for the socket's life, an allocation.
  if (!client_id.empty()) c.set_client_id(client_id);
  c.set_transport(transport);
  if (!authorization.empty()) c.set_authorization(authorization);
  if (early_state_) *c.mutable_state() = std::move(*early_state_);
  early_state_.reset();
  link_.connect(channel_, id_, std::move(c), std::static_pointer_cast<presence::Listener>(shared_from_this()));
}

void SocketPresence::want() {
  wanted_ = true;
  if (history_sent_) subscribe();
}

void SocketPresence::history_sent() {
  history_sent_ = true;
  if (wanted_) subscribe();
}

void SocketPresence::subscribe() {
  if (subscribed_) return;
  subscribed_ = true;
  link_.subscribe(channel_, std::static_pointer_cast<presence::Listener>(shared_from_this()));
}

void SocketPresence::request() {
  if (!subscribed_) {
    wanted_ = true;
    return subscribe();  // the list comes with the subscription
  }
  // At once, unless the last one was less than a second ago: then at the
  // next tick. Each answer encodes the whole list, so asking faster
  // coalesces instead of costing the bridge a list per request.
  const auto now = std::chrono::steady_clock::now();
  if (now - requested_ < std::chrono::seconds(1)) {
    lost_ = true;
    return;
  }
  requested_ = now;
  link_.request(channel_, std::static_pointer_cast<presence::Listener>(shared_from_this()));
}

std::optional<std::pair<std::string, std::string>> SocketPresence::update(google::protobuf::Struct state) {
  const auto now = std::chrono::steady_clock::now();
  tokens_ = std::min(kUpdatesPerSecond, tokens_ + std::chrono::duration<double>(now - refill_).count() * kUpdatesPerSecond);
  refill_ = now;
  if (tokens_ < 1) {
    return std::make_pair(std::string("rate_limited"),
                          "more than 20 presence updates a second; send the latest state less often");
  }
  tokens_ -= 1;
  if (auto error = syncd::graph::presence_state_error(state)) return std::make_pair(std::string("invalid_message"), *error);
  if (id_.empty()) {
    early_state_ = std::make_unique<google::protobuf::Struct>(std::move(state));  // sent with the socket's entry
    return std::nullopt;
  }
  link_.set_state(channel_, id_, std::move(state));
  return std::nullopt;
}

void SocketPresence::applied(std::int64_t version) {
  applied_ = std::max(applied_, version);
  report(false);
}

void SocketPresence::delivered(std::int64_t version) {
  delivered_ = std::max(delivered_, version);
  report(false);
}

// At most once a second; a report held back goes at the next tick.
void SocketPresence::report(bool now_or_never) {
  const auto now = std::chrono::steady_clock::now();
  if (id_.empty()) return;
  if (!now_or_never && now - reported_ < std::chrono::seconds(1)) {
    report_due_ = true;
    return;
  }
  if (now_or_never && !report_due_) return;
  report_due_ = false;
  reported_ = now;
  // Nobody has applied what it was not sent.
  link_.position(channel_, id_, delivered_, std::min(applied_, delivered_));
}

void SocketPresence::tick(std::int64_t delivered) {
  if (delivered > delivered_) {
    delivered_ = delivered;
    report_due_ = true;
  }
  report(true);
  if (lost_ && subscribed_) {
    lost_ = false;
    requested_ = std::chrono::steady_clock::now();
    link_.request(channel_, std::static_pointer_cast<presence::Listener>(shared_from_this()));
  }
}

void SocketPresence::leave() {
  if (subscribed_) link_.unsubscribe(channel_, this);
  if (!id_.empty()) link_.disconnect(channel_, id_);
  subscribed_ = false;
  id_.clear();
}

void SocketPresence::on_presence_frames(presence::Frames frames) {
  post_([client = client_, frames = std::move(frames)] {
    for (const presence::Frame& frame : *frames) client->presence_frame(frame);
  });
}

void SocketPresence::on_presence_error(const std::string& code, const std::string& message) {
  post_([self = shared_from_this(), code, message] { self->refused(code, message); });
}

void SocketPresence::refused(const std::string& code, const std::string& message) {
  if (!admitted_) {
    if (!held_error_) held_error_ = std::make_unique<std::pair<std::string, std::string>>(code, message);
    return;
  }
  client_->presence_error(code, message);
}

void SocketPresence::admitted() {
  admitted_ = true;
  if (!held_error_) return;
  const auto error = std::move(held_error_);
  client_->presence_error(error->first, error->second);
}

}  // namespace bridge
