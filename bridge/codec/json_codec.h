#pragma once
// The JSON WebSocket protocol (PROTOCOL.md) to and from sync.v1 messages.
//
// Client frames are parsed under ParseLimits (codec/json_parse.h: bounded
// depth and size, linear time); field names are camelCase, numbers are
// JSON numbers. JSON values map onto google.protobuf.Value
// exactly as far as doubles reach: integers up to 2^53 - 1 come back as the
// same integers, other numbers as the shortest text of the same double.
// Keys of a patch that the API does not name travel in Patch.extra and are
// written back in place, so a patch is relayed as its sender wrote it.
// Nothing here throws.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "api/messages.h"
#include "codec/codec_error.h"
#include "codec/json_parse.h"
#include "codec/presence_codec.h"

namespace bridge::codec {

struct Heartbeat {};

// {"type":"auth","payload":{"token":"<JWT>"}}: a fresh token for the open
// session, sent before the old one expires (Session `refresh`).
// A patch frame whose patch would surely be over limits.max_patch_bytes
// encoded: refused without being turned into protobuf (answered rejected
// too_large, as syncd would answer it).
struct OversizePatch {
  std::string id;
  std::size_t bytes = 0;  // a lower bound of its encoded size
};

// codec/presence_codec.h: presence_subscribe, presence_request,
// presence_update and applied.
using ClientMessage = std::variant<api::Patch, api::SyncRequest, Heartbeat, api::Refresh, OversizePatch,
                                   PresenceSubscribe, PresenceRequest, api::PresenceUpdate, api::Applied>;

// One text frame from a client.
std::variant<ClientMessage, Error> decode_client_frame(std::string_view frame, const ParseLimits& limits = {});

// Server frames.
std::string encode_ack(const api::Ack& ack);               // patch_response
std::string encode_broadcast(const api::Patch& patch);     // patch_broadcast
std::string encode_sync_state(const api::SyncState& state);  // sync_state
std::string encode_error(std::string_view code, std::string_view message);

// The lowercase ack status word: accepted, rejected, ignored.
std::string_view status_word(api::Ack::Status status);

// A patch as its JSON object text (with serverVersion when set), and back.
std::string patch_to_json(const api::Patch& patch);
std::variant<api::Patch, Error> patch_from_json(std::string_view json, const ParseLimits& limits = {});

// The first 64 bytes of an untrusted string, with anything but printable
// ASCII replaced by '?': safe to quote in an error frame or a log line.
std::string printable_prefix(std::string_view text);

}  // namespace bridge::codec
