#pragma once
// The protocols clients speak. An Encoder turns what delivery
// (delivery/sink.h) sends on one channel into a client's frames; a Dialect
// is an Encoder that also decodes the frames of a one-channel WebSocket.
// The JSON protocol of /sync (json_dialect.h) and the CRDT relay of /crdt
// (crdt_dialect.h) are Dialects; Socket.IO (socketio_encoder.h), whose
// frames the Engine.IO session decodes, is an Encoder per joined channel.
// One instance per socket (and channel), on its strand.
//
// A method returning a null Frame sends nothing.

#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "api/messages.h"
#include "codec/json_codec.h"
#include "upstream/feed.h"

namespace bridge::dialect {

using Frame = std::shared_ptr<const std::string>;

// A dialect's slot in a feed item's FrameCache.
enum Slot : std::size_t { kJsonSlot = 0, kCrdtSlot = 1, kSocketIoSlot = 2 };

class Encoder {
 public:
  virtual ~Encoder() = default;

  virtual Frame joined(const api::ChannelInfo& info) = 0;
  virtual Frame page(const api::SyncState& state, bool continues) = 0;
  // Encoded once per item for every socket of this dialect.
  virtual Frame broadcast(const upstream::FeedItem& item) = 0;
  virtual Frame ack(const api::Ack& ack) = 0;
  virtual Frame error(std::string_view code, std::string_view message) = 0;
};

class Dialect : public Encoder {
 public:
  // Whether the client gets history on joining (else it starts at the head),
  // and whether compacted history comes as a snapshot (else it is skipped).
  virtual bool history() const = 0;
  virtual bool snapshots() const = 0;

  // One text frame from the client.
  virtual std::variant<codec::ClientMessage, codec::Error> decode(std::string_view text) = 0;
};

// A frame holding `text`.
inline Frame frame(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

}  // namespace bridge::dialect
