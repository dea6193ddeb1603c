#pragma once
// A look at an encoded SessionResponse without decoding it: a broadcast is
// recognised and its patch bytes and server_version found, so that a patch
// sent to a thousand sockets is decoded (and encoded as JSON) once, by the
// first of them (ws/broadcast_cache.h).

#include <cstdint>
#include <optional>
#include <string_view>

namespace bridge::upstream {

struct PeekedBroadcast {
  std::string_view patch;  // the encoded Patch, inside the message
  std::int64_t version = 0;
};

// The broadcast `response` holds; nullopt for any other message (or bytes
// that do not parse, which the caller then decodes to find out).
std::optional<PeekedBroadcast> peek_broadcast(std::string_view response);

}  // namespace bridge::upstream
