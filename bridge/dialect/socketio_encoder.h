#pragma once
// One channel of a Socket.IO client (codec/socketio_codec.h): patches go out
// as `sync:changes` events whose last argument is the offset "<channel>@<V>"
// (V: the last version the event holds), so a client that reconnects with
// its last offset resumes exactly there, through any bridge. A snapshot's
// pages carry no offset: a client cut off inside one resumes from before it
// and gets it whole again.
//
// joined() and ack() return the JSON payloads the socket puts in its
// acknowledgements (they answer an event of the client's).

#include <cstdint>
#include <string>

#include "dialect/dialect.h"

namespace bridge::dialect {

class SocketIoEncoder final : public Encoder {
 public:
  explicit SocketIoEncoder(std::string channel) : channel_(std::move(channel)) {}

  Frame joined(const api::ChannelInfo& info) override;
  Frame page(const api::SyncState& state, bool continues) override;
  Frame broadcast(const upstream::FeedItem& item) override;
  Frame ack(const api::Ack& ack) override;
  Frame error(std::string_view code, std::string_view message) override;
  // A `sync:reset` event: the channel's state at `version` follows.
  Frame reset(std::int64_t version) const;
  // A `sync:presence` event (frame, channel): `frame_json` is the JSON
  // protocol's presence frame, {type, payload} (codec/presence_codec.h).
  Frame presence(const std::string& frame_json) const;

  // Parses an offset of this dialect; false when `offset` is not one.
  static bool parse_offset(std::string_view offset, std::string* channel, std::int64_t* version);

 private:
  std::string offset(std::int64_t version) const;

  const std::string channel_;
  std::int64_t snapshot_version_ = -1;  // the version of the snapshot being sent
};

}  // namespace bridge::dialect
