#pragma once
// Engine.IO v4 and Socket.IO v5 packets (socket.io-protocol,
// engine.io-protocol), text only: binary packets and attachments are
// refused. Socket.IO payloads are parsed under ParseLimits like every
// client frame (codec/json_parse.h). Nothing here throws.

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "codec/json_codec.h"
#include "codec/json_parse.h"

namespace bridge::codec {

enum class EioType : char {
  kOpen = '0',
  kClose = '1',
  kPing = '2',
  kPong = '3',
  kMessage = '4',
  kUpgrade = '5',
  kNoop = '6',
};

struct EioPacket {
  EioType type;
  std::string_view data;  // into the decoded text
};

// One Engine.IO packet: a WebSocket text message, or one packet of a
// polling payload. nullopt for anything else (binary "b…" included).
std::optional<EioPacket> decode_eio(std::string_view text);

// The packets of a polling request body, separated by the record separator
// 0x1E; nullopt when it holds more than `max_packets`.
std::optional<std::vector<std::string_view>> split_eio_payload(std::string_view body, std::size_t max_packets);
inline constexpr char kRecordSeparator = '\x1e';

enum class SioType : int { kConnect = 0, kDisconnect, kEvent, kAck, kConnectError, kBinaryEvent, kBinaryAck };

struct SioPacket {
  SioType type = SioType::kConnect;
  std::string nsp = "/";
  std::optional<std::int64_t> ack_id;
  boost::json::value data;  // null when absent
};

// The data of an Engine.IO message packet. An EVENT's data is an array
// starting with the event name; a CONNECT's, if any, an object.
std::variant<SioPacket, Error> decode_sio(std::string_view text, const ParseLimits& limits);

// Server packets, each a whole Engine.IO packet.
std::string eio_open(std::string_view sid, bool upgrades, int ping_interval_ms, int ping_timeout_ms,
                     std::size_t max_payload);
std::string sio_connected(std::string_view sid, std::string_view pid);
// A refused CONNECT (or a refused namespace): `code` goes in data.code.
std::string sio_connect_error(std::string_view nsp, std::string_view message, std::string_view code);
// 42["name", <args as JSON texts>...]
std::string sio_event(std::string_view name, const std::vector<std::string>& args_json);
// 43<id>[<arg as JSON text>]
std::string sio_ack(std::int64_t id, std::string_view arg_json);

// The body of a refused Engine.IO HTTP request: {"code":N,"message":"..."}
// (0 unknown transport, 1 unknown session id, 2 bad handshake method,
// 3 bad request, 4 forbidden, 5 unsupported protocol version).
std::string eio_error(int code, std::string_view message);

// `text` as a JSON string literal.
std::string json_string(std::string_view text);

}  // namespace bridge::codec
