#include "socket/socket_presence.h"

#include <algorithm>

#include "codec/json_values.h"

namespace bridge {

namespace {

constexpr double kUpdatesPerSecond = 20;
constexpr std::size_t kMaxStateBytes = 1024;

}  // namespace

SocketPresence::SocketPresence(presence::PresenceLink& link, std::string channel, delivery::Post post, Client* client)
    : link_(link), channel_(std::move(channel)), post_(std::move(post)), client_(client) {}

void SocketPresence::join(const std::string& client_id, const std::string& transport,
                          const std::string& authorization) {
  if (!id_.empty()) return;
  id_ = link_.next_id();
  api::PresenceConnect c;
  c.set_client_id(client_id);
  c.set_transport(transport);
  c.set_authorization(authorization);
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
  const std::string json = codec::dump(codec::from_struct(state));
  if (json.size() > kMaxStateBytes) {
    return std::make_pair(std::string("invalid_message"), "a presence state is at most 1 KiB of JSON (this one is " +
                                                              std::to_string(json.size()) + " bytes)");
  }
  if (json.find("\\u0000") != std::string::npos) {
    return std::make_pair(std::string("invalid_message"), std::string("a presence state may not contain NUL characters"));
  }
  if (id_.empty()) {
    return std::make_pair(std::string("invalid_message"), std::string("the socket has not joined its channel yet"));
  }
  link_.set_state(channel_, id_, std::move(state));
  return std::nullopt;
}

void SocketPresence::applied(std::int64_t version) {
  applied_ = std::max(applied_, version);
  if (!id_.empty()) link_.position(channel_, id_, delivered_, applied_);
}

void SocketPresence::delivered(std::int64_t version) {
  delivered_ = std::max(delivered_, version);
  const auto now = std::chrono::steady_clock::now();
  if (id_.empty() || now - reported_ < std::chrono::seconds(1)) return;
  reported_ = now;
  link_.position(channel_, id_, delivered_, applied_);
}

void SocketPresence::tick(std::int64_t delivered) {
  delivered_ = std::max(delivered_, delivered);
  if (!id_.empty()) link_.position(channel_, id_, delivered_, applied_);
  if (lost_ && subscribed_) {
    lost_ = false;
    link_.request(channel_, std::static_pointer_cast<presence::Listener>(shared_from_this()));
  }
}

void SocketPresence::leave() {
  if (subscribed_) link_.unsubscribe(channel_, this);
  if (!id_.empty()) link_.disconnect(channel_, id_);
  subscribed_ = false;
  id_.clear();
}

void SocketPresence::on_presence_frame(presence::Frame frame) {
  post_([client = client_, frame = std::move(frame)] { client->presence_frame(frame); });
}

void SocketPresence::on_presence_error(const std::string& code, const std::string& message) {
  post_([client = client_, code, message] { client->presence_error(code, message); });
}

}  // namespace bridge
