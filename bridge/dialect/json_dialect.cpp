#include "dialect/json_dialect.h"

namespace bridge::dialect {

std::variant<codec::ClientMessage, codec::Error> JsonDialect::decode(std::string_view text) {
  return codec::decode_client_frame(text, limits_);
}

// No history, but the client still learns where the channel stands.
Frame JsonDialect::joined(const api::ChannelInfo& info) {
  api::SyncState state;
  state.set_version(info.head_version());
  return frame(codec::encode_sync_state(state));
}

Frame JsonDialect::page(const api::SyncState& state, bool) { return frame(codec::encode_sync_state(state)); }

Frame JsonDialect::broadcast(const upstream::FeedItem& item) {
  return item.frames.get(kJsonSlot, [&] { return frame(codec::encode_broadcast(item.patch)); });
}

Frame JsonDialect::ack(const api::Ack& ack) { return frame(codec::encode_ack(ack)); }

Frame JsonDialect::error(std::string_view code, std::string_view message) {
  return frame(codec::encode_error(code, message));
}

}  // namespace bridge::dialect
