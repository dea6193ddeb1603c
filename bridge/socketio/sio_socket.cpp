#include "socketio/sio_socket.h"

#include "auth/token_format.h"
#include "codec/channel_name.h"
#include "codec/socketio_codec.h"
#include "socket/close_codes.h"
#include "socketio/eio_session.h"
#include "socketio/registry.h"

namespace bridge::socketio {

namespace bj = boost::json;

namespace {

// Codes reconnecting cannot fix: the client must change something first.
bool terminal(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED ||
         code == grpc::StatusCode::NOT_FOUND || code == grpc::StatusCode::INVALID_ARGUMENT;
}

}  // namespace

SioSocket::SioSocket(EioSession& eio, Handshake handshake)
    : eio_(eio),
      handshake_(std::move(handshake)),
      authorization_(handshake_.authorization),
      token_(eio.strand(), authorization_, [this](const grpc::Status& status) { fail(status); }),
      upstream_(*eio.context().stub, authorization_, eio.strand_post()),
      acks_([this](std::int64_t id, std::string answer) { send(dialect::frame(codec::sio_ack(id, answer))); }) {}

SioSocket::~SioSocket() = default;

delivery::Post SioSocket::post() { return eio_.strand_post(); }

void SioSocket::send(dialect::Frame frame) { eio_.send(std::move(frame), true); }

void SioSocket::deliver(dialect::Frame frame) { eio_.send(std::move(frame), false); }

void SioSocket::refuse(std::optional<std::int64_t> ack, std::string_view code, std::string_view message,
                       std::string_view channel) {
  eio_.context().stats.error_sent();
  if (ack) return send(dialect::frame(codec::sio_ack(*ack, codec::failure_json(code, message))));
  send(dialect::frame(codec::sio_event("sync:error", {codec::error_json(code, message, channel)})));
}

void SioSocket::fail(const grpc::Status& status) {
  refuse(std::nullopt, ending_for(status.error_code()).code, status.error_message());
  if (terminal(status.error_code())) send(dialect::frame("41"));  // DISCONNECT: no automatic reconnection
  eio_.end_after_flush(status.error_message());
}

bool SioSocket::admit_subject() {
  const std::string& subject = token_.subject();
  if (subject_hold_ || subject.empty()) return true;
  subject_hold_ = eio_.context().per_subject.take(subject);
  return static_cast<bool>(subject_hold_);
}

void SioSocket::on_message(std::string_view data) {
  auto decoded = codec::decode_sio(data, eio_.context().limits.parse);
  if (auto* err = std::get_if<codec::Error>(&decoded)) {
    if (!connected_ && !data.empty() && data.front() == '0') {
      return send(dialect::frame(codec::sio_connect_error("/", err->message, err->code)));
    }
    return refuse(std::nullopt, err->code, err->message);
  }
  const auto& packet = std::get<codec::SioPacket>(decoded);
  if (packet.nsp != "/") {
    if (packet.type == codec::SioType::kConnect) {
      send(dialect::frame(codec::sio_connect_error(
          packet.nsp, "only the default namespace \"/\" is served; connect to io(url) without a path",
          "invalid_namespace")));
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

void SioSocket::on_connect(const codec::SioPacket& packet) {
  if (connected_ || stopped_) return;
  const codec::ConnectAuth auth = codec::decode_connect_auth(packet.data);
  std::string token_error = handshake_.auth_error;
  if (auth.token) {
    const auto bearer = syncd::auth::bearer_token(*auth.token);
    if (bearer.ok()) {
      authorization_ = syncd::auth::authorization_value(bearer.token);
      token_error.clear();
    } else {
      token_error = bearer.error;
    }
  }
  if (!token_error.empty()) {
    return send(dialect::frame(codec::sio_connect_error("/", token_error, "unauthenticated")));
  }
  connected_ = true;
  token_.start(eio_.shared_from_this());
  // Recovery: the pid comes back, and the channel resumes after the offset.
  std::string channel;
  std::int64_t version = 0;
  const bool recover = !auth.pid.empty() && dialect::SocketIoEncoder::parse_offset(auth.offset, &channel, &version) &&
                       valid_channel(channel);
  // The socket's id is not the Engine.IO sid: that one authorizes requests on the session.
  send(dialect::frame(codec::sio_connected(random_id(), recover ? auth.pid : random_id())));
  if (recover) open_channel(channel, version, std::nullopt, true, "", false);
}

void SioSocket::on_event(const codec::SioPacket& packet) {
  const bj::array& args = packet.data.get_array();
  const bj::string& name = args.front().get_string();
  static const bj::value kNull;
  const bj::value& first = args.size() > 1 ? args[1] : kNull;
  if (name == "sync:join") return join(first, packet.ack_id);
  if (name == "sync:change") return change(first, packet.ack_id);
  if (name == "sync:get_changes") return get_changes(first, packet.ack_id);
  if (codec::is_presence_event(name)) return presence(name, first, packet.ack_id);
  refuse(packet.ack_id, "unknown_type",
         "unknown event \"" + codec::printable_prefix(std::string_view(name.data(), name.size())) +
             "\"; expected sync:join, sync:change, sync:get_changes, sync:presence_subscribe, "
             "sync:presence_request, sync:presence_update or sync:applied");
}

void SioSocket::join(const bj::value& args, std::optional<std::int64_t> ack) {
  auto decoded = codec::decode_join(args);
  if (auto* err = std::get_if<codec::Error>(&decoded)) return refuse(ack, err->code, err->message);
  const auto& request = std::get<codec::JoinRequest>(decoded);
  if (auto it = channels_.find(request.channel); it != channels_.end() && it->second->usable()) {
    // Joined already: presence may be asked for now; the name stays the first join's.
    if (request.presence) it->second->set_presence(std::nullopt, true);
    return it->second->rejoin(ack);
  }
  if (channels_.size() >= kMaxChannels || failed_.size() >= kMaxChannels) {
    return refuse(ack, "rate_limited",
                  "a socket joins at most " + std::to_string(kMaxChannels) + " channels; reconnect to start over");
  }
  open_channel(request.channel, request.since, ack, false, request.client_id, request.presence);
}

void SioSocket::open_channel(const std::string& name, std::optional<std::int64_t> since,
                             std::optional<std::int64_t> ack, bool recovering, std::string client_id,
                             bool presence) {
  auto& slot = channels_[name];
  if (slot) failed_.push_back(std::move(slot));  // a failed join of the same channel
  slot = std::make_unique<SioChannel>(*this, name, since, recovering);
  slot->set_presence(std::move(client_id), presence);  // before start(): the name goes with the member
  slot->start(ack);
}

void SioSocket::presence(std::string_view name, const bj::value& args, std::optional<std::int64_t> ack) {
  auto decoded = codec::decode_presence_event(name, args);
  if (auto* err = std::get_if<codec::Error>(&decoded)) return refuse(ack, err->code, err->message);
  auto& event = std::get<codec::PresenceEvent>(decoded);
  std::string error;
  SioChannel* channel = channel_for(event.channel, &error);
  if (channel == nullptr) return refuse(ack, "not_joined", error);
  if (auto refused = channel->presence_event(event)) {
    return refuse(ack, refused->first, refused->second, event.channel.value_or(""));
  }
  if (ack) send(dialect::frame(codec::sio_ack(*ack, R"({"success":true})")));
}

SioChannel* SioSocket::channel_for(const std::optional<std::string>& named, std::string* error) {
  SioChannel* found = nullptr;
  if (named) {
    auto it = channels_.find(*named);
    if (it != channels_.end() && it->second->live()) found = it->second.get();
  } else {
    for (auto& [name, channel] : channels_) {
      if (!channel->live()) continue;  // joining, or refused
      if (found != nullptr) {
        *error = "this socket has joined several channels: name the channel";
        return nullptr;
      }
      found = channel.get();
    }
  }
  if (found == nullptr) *error = "sync:join the channel, and wait for its answer, before sending anything for it";
  return found;
}

void SioSocket::change(const bj::value& payload, std::optional<std::int64_t> ack) {
  const bool batch = payload.is_array();
  const std::size_t size = batch ? payload.get_array().size() : 1;
  if (batch && size > kMaxBatch) {
    return refuse(ack, "too_large", "one sync:change carries at most " + std::to_string(kMaxBatch) + " changes");
  }
  // With no ack id, nothing is collected: refusals go out as sync:error.
  const std::uint64_t event = ack ? acks_.open(*ack, batch, size) : 0;
  for (std::size_t i = 0; i < size; ++i) {
    const bj::value& one = batch ? payload.get_array()[i] : payload;
    std::string id;
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
    if (ack) acks_.expect(event, i, channel->delivery().channel(), id);
    if (auto* big = std::get_if<codec::OversizePatch>(&change.patch)) {
      channel->delivery().reject_too_large(big->id, "at least " + std::to_string(big->bytes));
    } else {
      channel->delivery().submit(std::move(std::get<api::Patch>(change.patch)));
    }
  }
}

// One at a time: a page may be a thousand changes, and the client reads
// them before it asks for the next.
void SioSocket::get_changes(const bj::value& args, std::optional<std::int64_t> ack) {
  auto decoded = codec::decode_get_changes(args);
  if (auto* err = std::get_if<codec::Error>(&decoded)) return refuse(ack, err->code, err->message);
  if (!ack) return;  // nobody to answer
  if (reading_changes_) {
    return refuse(ack, "rate_limited", "one sync:get_changes at a time; wait for its answer");
  }
  const auto& request = std::get<codec::ChangesRequest>(decoded);
  api::GetChangesRequest req;
  req.set_channel(request.channel);
  req.set_from_version(request.since);
  req.set_limit(request.limit);
  reading_changes_ = true;
  upstream_.get_changes(std::move(req), [this, id = *ack, name = request.channel](const grpc::Status& status,
                                                                                 api::GetChangesResponse&& page) {
    reading_changes_ = false;
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
  subject_hold_ = {};
}

}  // namespace bridge::socketio
