#include "socketio/sio_socket.h"

#include "auth/token_format.h"
#include "codec/socketio_codec.h"
#include "http/channel_name.h"
#include "socketio/eio_session.h"
#include "socketio/registry.h"
#include "ws/close_codes.h"

namespace bridge::socketio {

namespace bj = boost::json;

namespace {

const bj::string* string_at(const bj::object& j, std::string_view key) {
  const bj::value* v = j.if_contains(key);
  return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
}

// The channel an event names: `channel`, or `userId` (the demo's rooms).
std::optional<std::string> named_channel(const bj::object& args) {
  for (const char* key : {"channel", "userId"}) {
    if (const bj::value* v = args.if_contains(key); v != nullptr && v->is_string()) return std::string(v->get_string());
  }
  return std::nullopt;
}

// An optional non-negative integer field; false when present and not one.
bool read_count(const bj::object& args, std::string_view key, std::optional<std::int64_t>* out) {
  const bj::value* v = args.if_contains(key);
  if (v == nullptr || v->is_null()) return true;
  if (v->is_int64() && v->get_int64() >= 0) {
    *out = v->get_int64();
  } else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    *out = static_cast<std::int64_t>(v->get_uint64());
  } else if (v->is_double() && v->get_double() >= 0 && v->get_double() <= 9007199254740991.0 &&
             v->get_double() == static_cast<double>(static_cast<std::int64_t>(v->get_double()))) {
    *out = static_cast<std::int64_t>(v->get_double());
  } else {
    return false;
  }
  return true;
}

}  // namespace

SioSocket::SioSocket(EioSession& eio, Handshake handshake)
    : eio_(eio),
      handshake_(std::move(handshake)),
      authorization_(handshake_.authorization),
      token_(eio.strand(), authorization_,
             [this](const grpc::Status& status) {
               send(dialect::frame(codec::sio_event(
                   "sync:error", {codec::error_json(ending_for(status.error_code()).code, status.error_message())})));
               eio_.end_after_flush(status.error_message());
             }),
      upstream_(*eio.context().stub, authorization_, post()),
      acks_([this](std::int64_t id, std::string answer) { send(dialect::frame(codec::sio_ack(id, answer))); }) {}

SioSocket::~SioSocket() = default;

delivery::Post SioSocket::post() {
  return [&eio = eio_](std::function<void()> fn) { eio.run_on_strand(std::move(fn)); };
}

void SioSocket::send(dialect::Frame frame) { eio_.send(std::move(frame)); }

void SioSocket::refuse(std::optional<std::int64_t> ack, std::string_view code, std::string_view message,
                       std::string_view channel) {
  if (ack) return send(dialect::frame(codec::sio_ack(*ack, codec::failure_json(code, message))));
  send(dialect::frame(codec::sio_event("sync:error", {codec::error_json(code, message, channel)})));
}

void SioSocket::on_message(std::string_view data) {
  auto decoded = codec::decode_sio(data, eio_.context().limits.parse);
  if (auto* err = std::get_if<codec::Error>(&decoded)) {
    eio_.context().stats.error_sent();
    return refuse(std::nullopt, err->code, err->message);
  }
  auto& packet = std::get<codec::SioPacket>(decoded);
  if (packet.nsp != "/") {
    if (packet.type == codec::SioType::kConnect) {
      send(dialect::frame(codec::sio_connect_error(
          packet.nsp, "only the default namespace \"/\" is served; connect to io(url) without a path", "invalid_namespace")));
    }
    return;
  }
  switch (packet.type) {
    case codec::SioType::kConnect: return on_connect(packet);
    case codec::SioType::kDisconnect: return eio_.end("the client disconnected");
    case codec::SioType::kEvent:
      if (connected_) on_event(packet);  // a namespace not connected hears nothing
      return;
    default: return;  // acks of events the bridge never asks acks for
  }
}

void SioSocket::on_connect(codec::SioPacket& packet) {
  if (connected_ || stopped_) return;
  const bj::object* auth = packet.data.is_object() ? &packet.data.get_object() : nullptr;
  const auto refuse_connect = [this](std::string_view message, std::string_view code) {
    send(dialect::frame(codec::sio_connect_error("/", message, code)));
  };
  std::string token_error = handshake_.auth_error;
  if (const bj::string* token = auth ? string_at(*auth, "token") : nullptr; token != nullptr) {
    const auto bearer = syncd::auth::bearer_token(std::string_view(token->data(), token->size()));
    if (bearer.ok()) {
      authorization_ = syncd::auth::authorization_value(bearer.token);
      token_error.clear();
    } else {
      token_error = bearer.error;
    }
  }
  if (!token_error.empty()) return refuse_connect(token_error, "unauthenticated");
  address_hold_ = eio_.context().per_address.take(handshake_.address);
  if (!address_hold_) {
    return refuse_connect("this address already has " + std::to_string(eio_.context().per_address.limit()) +
                              " sockets open (the bridge's --max-sockets-per-address); close one first",
                          "rate_limited");
  }
  connected_ = true;
  token_.start(eio_.shared_from_this());
  // Recovery: the pid comes back, and the channel resumes after the offset.
  const bj::string* pid = auth ? string_at(*auth, "pid") : nullptr;
  const bj::string* offset = auth ? string_at(*auth, "offset") : nullptr;
  std::string channel;
  std::int64_t version = 0;
  const bool recover = pid != nullptr && !pid->empty() && pid->size() <= 64 && offset != nullptr &&
                       dialect::SocketIoEncoder::parse_offset(std::string_view(offset->data(), offset->size()),
                                                              &channel, &version) &&
                       valid_channel(channel);
  send(dialect::frame(codec::sio_connected(eio_.sid(), recover ? std::string(*pid) : random_id())));
  if (recover) open_channel(channel, version, std::nullopt);
}

void SioSocket::on_event(codec::SioPacket& packet) {
  const bj::array& args = packet.data.get_array();
  const bj::string& name = args.front().get_string();
  static const bj::value kNull;
  const bj::value& first = args.size() > 1 ? args[1] : kNull;
  if (name == "sync:join") return join(first, packet.ack_id);
  if (name == "sync:change") return change(first, packet.ack_id);
  if (name == "sync:get_changes") return get_changes(first, packet.ack_id);
  refuse(packet.ack_id, "unknown_type",
         "unknown event \"" + codec::printable_prefix(std::string_view(name.data(), name.size())) +
             "\"; expected sync:join, sync:change or sync:get_changes");
}

void SioSocket::join(const bj::value& args, std::optional<std::int64_t> ack) {
  const auto channel = args.is_object() ? named_channel(args.get_object()) : std::nullopt;
  if (!channel || !valid_channel(*channel)) {
    return refuse(ack, "invalid_message",
                  "sync:join takes {channel} or {userId}: 1-128 characters of [A-Za-z0-9._:-], and an optional since");
  }
  std::optional<std::int64_t> since;
  if (!read_count(args.get_object(), "since", &since)) {
    return refuse(ack, "invalid_message", "since must be a version: 0, 1, 2, ...");
  }
  if (auto it = channels_.find(*channel); it != channels_.end() && it->second->usable()) {
    return it->second->rejoin(ack);
  }
  if (channels_.size() >= kMaxChannels) {
    return refuse(ack, "rate_limited", "a socket joins at most " + std::to_string(kMaxChannels) + " channels");
  }
  open_channel(*channel, since, ack);
}

SioChannel& SioSocket::open_channel(const std::string& name, std::optional<std::int64_t> since,
                                    std::optional<std::int64_t> ack) {
  auto& slot = channels_[name];
  if (slot) failed_.push_back(std::move(slot));  // a failed join of the same channel
  slot = std::make_unique<SioChannel>(*this, name, since);
  slot->start(ack);
  return *slot;
}

SioChannel* SioSocket::channel_for(const std::optional<std::string>& named, std::string* error) {
  SioChannel* found = nullptr;
  if (named) {
    auto it = channels_.find(*named);
    if (it != channels_.end() && it->second->usable()) found = it->second.get();
  } else {
    for (auto& [name, channel] : channels_) {
      if (!channel->usable()) continue;  // a refused join
      if (found != nullptr) {
        *error = "this socket has joined several channels: name the change's channel";
        return nullptr;
      }
      found = channel.get();
    }
  }
  if (found == nullptr) *error = "sync:join the channel before sending changes to it";
  return found;
}

void SioSocket::change(const bj::value& payload, std::optional<std::int64_t> ack) {
  const bool batch = payload.is_array();
  const std::size_t size = batch ? payload.get_array().size() : 1;
  if (batch && size > kMaxBatch) {
    return refuse(ack, "too_large", "one sync:change carries at most " + std::to_string(kMaxBatch) + " changes");
  }
  const std::uint64_t event = acks_.open(ack, batch, size);
  for (std::size_t i = 0; i < size; ++i) {
    const bj::value& one = batch ? payload.get_array()[i] : payload;
    std::string id;
    // Refused here: in the event's ack, or as a sync:error when it has none.
    const auto refuse_change = [&](std::string_view code, std::string_view message) {
      if (!ack) return refuse(std::nullopt, code, message);
      acks_.answer_at(event, i, codec::failure_json(code, message, id));
    };
    auto decoded = codec::decode_change(one, eio_.context().limits.parse, &id);
    if (auto* err = std::get_if<codec::Error>(&decoded)) {
      refuse_change(err->code, err->message);
      continue;
    }
    auto& change = std::get<codec::Change>(decoded);
    std::string error;
    SioChannel* channel = channel_for(change.channel, &error);
    if (channel == nullptr) {
      refuse_change("not_joined", error);
      continue;
    }
    if (channel->delivery().outbox_full()) {
      refuse_change("rate_limited", "too many changes unanswered; wait for their acks");
      continue;
    }
    acks_.expect(event, i, id);
    if (auto* big = std::get_if<codec::OversizePatch>(&change.patch)) {
      channel->delivery().reject_too_large(big->id, "at least " + std::to_string(big->bytes));
    } else {
      channel->delivery().submit(std::move(std::get<api::Patch>(change.patch)));
    }
  }
}

void SioSocket::get_changes(const bj::value& args, std::optional<std::int64_t> ack) {
  const auto channel = args.is_object() ? named_channel(args.get_object()) : std::nullopt;
  std::optional<std::int64_t> since, limit;
  if (!channel || !valid_channel(*channel) || !read_count(args.get_object(), "since", &since) ||
      !read_count(args.get_object(), "limit", &limit) || limit.value_or(1) < 1 || limit.value_or(1) > 1000) {
    return refuse(ack, "invalid_message",
                  "sync:get_changes takes {channel} or {userId}, since (a version) and an optional limit (1-1000)");
  }
  if (!ack) return;  // nobody to answer
  api::GetChangesRequest req;
  req.set_channel(*channel);
  req.set_from_version(since.value_or(0));
  req.set_limit(static_cast<int>(limit.value_or(0)));
  upstream_.get_changes(std::move(req), [this, id = *ack, name = *channel](const grpc::Status& status,
                                                                           api::GetChangesResponse&& page) {
    if (stopped_) return;
    if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
      return refuse(id, "compacted",
                    status.error_message() + "; sync:join the channel with your since to get its state instead");
    }
    if (!status.ok()) return refuse(id, ending_for(status.error_code()).code, status.error_message());
    send(dialect::frame(codec::sio_ack(id, codec::changes_page_json(page, name))));
  });
}

void SioSocket::drained() {
  for (auto& [name, channel] : channels_) channel->delivery().drained();
}

bool SioSocket::waiting() const {
  for (const auto& [name, channel] : channels_) {
    if (channel->usable() && channel->delivery().waiting()) return true;
  }
  return false;
}

void SioSocket::stop() {
  stopped_ = true;
  token_.cancel();
  for (auto& [name, channel] : channels_) channel->stop();
  for (auto& channel : failed_) channel->stop();
  address_hold_ = {};
}

}  // namespace bridge::socketio
