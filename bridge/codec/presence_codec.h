#pragma once
// Presence and positions in the JSON WebSocket protocol (PROTOCOL.md).
//
// Client frames:
//   {"type":"presence_subscribe"}            start receiving the channel's presence
//   {"type":"presence_request"}              the whole list again, now
//   {"type":"presence_update","payload":{"state":{...}}}   this socket's state (<= 1 KiB)
//   {"type":"applied","payload":{"version":N}}             applied up to version N
// Server frames:
//   {"type":"presence_state","payload":{"channel":"c","members":[member...]}}
//   {"type":"presence_join"|"presence_update"|"presence_leave","payload":member}
// where member is {"connectionId","clientId","subject","transport",
// "connectedAt","state","deliveredVersion","appliedVersion"}.

#include <string>
#include <string_view>
#include <variant>

#include <boost/json/value.hpp>

#include "api/messages.h"
#include "codec/codec_error.h"

namespace bridge::codec {

struct PresenceSubscribe {};
struct PresenceRequest {};

// `type` is a presence_* or applied frame's type (see is_presence_type).
std::variant<PresenceSubscribe, PresenceRequest, api::PresenceUpdate, api::Applied, Error> decode_presence(
    std::string_view type, const boost::json::value& payload);
bool is_presence_type(std::string_view type);

// A syncd PresenceEvent (state, join, update or leave) as its frame.
std::string encode_presence(const api::PresenceEvent& event);
// The whole list as a presence_state frame.
std::string encode_presence_state(const api::PresenceList& list);

}  // namespace bridge::codec
