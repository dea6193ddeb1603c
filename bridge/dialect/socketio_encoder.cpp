#include "dialect/socketio_encoder.h"

#include <charconv>

#include "codec/engineio.h"
#include "codec/socketio_codec.h"

namespace bridge::dialect {

std::string SocketIoEncoder::offset(std::int64_t version) const {
  return codec::json_string(channel_ + "@" + std::to_string(version));
}

bool SocketIoEncoder::parse_offset(std::string_view offset, std::string* channel, std::int64_t* version) {
  const auto at = offset.rfind('@');
  if (at == std::string_view::npos || at == 0) return false;
  const std::string_view digits = offset.substr(at + 1);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *version);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || *version < 0) return false;
  *channel = std::string(offset.substr(0, at));
  return true;
}

Frame SocketIoEncoder::joined(const api::ChannelInfo& info) {
  return frame(codec::joined_json(channel_, info.head_version()));
}

Frame SocketIoEncoder::page(const api::SyncState& state, bool) {
  if (state.snapshot()) snapshot_version_ = state.version();
  const bool in_snapshot = state.version() == snapshot_version_ && state.has_more();
  if (state.patches().empty()) return nullptr;
  std::string changes = "[";
  for (int i = 0; i < state.patches_size(); ++i) {
    if (i > 0) changes += ',';
    changes += codec::change_json(state.patches(i), channel_);
  }
  changes += ']';
  if (in_snapshot) return frame(codec::sio_event("sync:changes", {std::move(changes)}));
  return frame(codec::sio_event("sync:changes", {std::move(changes), offset(state.version())}));
}

Frame SocketIoEncoder::broadcast(const upstream::FeedItem& item) {
  return item.frames.get(kSocketIoSlot, [&] {
    return frame(codec::sio_event("sync:changes",
                                  {"[" + codec::change_json(item.patch, channel_) + "]", offset(item.version)}));
  });
}

Frame SocketIoEncoder::ack(const api::Ack& ack) { return frame(codec::change_ack_json(ack)); }

Frame SocketIoEncoder::error(std::string_view code, std::string_view message) {
  return frame(codec::sio_event("sync:error", {codec::error_json(code, message, channel_)}));
}

Frame SocketIoEncoder::reset(std::int64_t version) const {
  return frame(codec::sio_event("sync:reset", {codec::reset_json(channel_, version)}));
}

Frame SocketIoEncoder::presence(const std::string& frame_json) const {
  return frame(codec::sio_event("sync:presence", {frame_json, codec::json_string(channel_)}));
}

}  // namespace bridge::dialect
