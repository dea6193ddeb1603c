#include "dialect/crdt_dialect.h"

#include "codec/crdt_codec.h"

namespace bridge::dialect {

std::variant<codec::ClientMessage, codec::Error> CrdtDialect::decode(std::string_view text) {
  auto decoded = codec::decode_crdt_frame(text, channel_, limits_);
  if (auto* err = std::get_if<codec::Error>(&decoded)) return std::move(*err);
  auto& msg = std::get<codec::CrdtMessage>(decoded);
  if (auto* patch = std::get_if<api::Patch>(&msg)) return codec::ClientMessage{std::move(*patch)};
  api::SyncRequest pull;
  pull.set_from_version(std::get<codec::CrdtPull>(msg).version);
  return codec::ClientMessage{std::move(pull)};
}

Frame CrdtDialect::joined(const api::ChannelInfo& info) {
  server_id_ = info.server_id();
  return frame(codec::encode_connected(server_id_, info.head_version(), channel_));
}

Frame CrdtDialect::page(const api::SyncState& state, bool continues) {
  if (!state.requested()) return nullptr;  // a CRDT client joins at the head: only pulls have pages
  for (const auto& p : state.patches()) {
    if (p.op() == "opaque") codec::append_changes(p, &pull_changes_);
  }
  if (continues) return nullptr;
  Frame update = frame(codec::encode_crdt_update(pull_changes_, state.version(), server_id_, channel_));
  pull_changes_.Clear();
  return update;
}

Frame CrdtDialect::broadcast(const upstream::FeedItem& item) {
  if (item.patch.op() != "opaque") return nullptr;  // graph patches mean nothing here
  return item.frames.get(kCrdtSlot, [&] {
    google::protobuf::ListValue changes;
    codec::append_changes(item.patch, &changes);
    return frame(codec::encode_crdt_update(changes, item.version, server_id_, channel_));
  });
}

Frame CrdtDialect::ack(const api::Ack& ack) {
  if (ack.status() == api::Ack::REJECTED) return error(ack.code(), ack.reason());
  return frame(codec::encode_crdt_ack(server_id_, ack.server_version(), channel_));
}

Frame CrdtDialect::error(std::string_view code, std::string_view message) {
  return frame(codec::encode_error(code, message));
}

}  // namespace bridge::dialect
