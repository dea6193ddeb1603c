#pragma once
// The changes of the Socket.IO dialect (the events of the Socket.IO sync
// demo) to and from sync.v1 patches. A change is
//   {id, collection, documentId, operation, data, timestamp, userId, channel?}
// insert -> create_node (label = collection, node id = documentId,
// properties = data), update -> update_node (properties merged), delete ->
// delete_node; any other operation is stored as an opaque patch holding the
// change. userId travels as the patch's client_id. Going out, a change's
// `timestamp` is its version in the channel; a patch no change describes
// (an edge, say, from another protocol) goes out with `operation` set to
// its op and `patch` holding the JSON patch. Nothing here throws.

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "api/messages.h"
#include "codec/json_codec.h"
#include "codec/json_parse.h"
#include "codec/presence_codec.h"

namespace bridge::codec {

struct Change {
  std::variant<api::Patch, OversizePatch> patch;
  std::optional<std::string> channel;  // the change's own `channel`, when it names one
};

// sync:join {channel | userId, since?}
//   with presence: true (receive the channel's presence as sync:presence
//   events) and clientId (the name this socket is listed under)
struct JoinRequest {
  std::string channel;
  std::optional<std::int64_t> since;  // none: from the head
  bool presence = false;
  std::string client_id;
};
std::variant<JoinRequest, Error> decode_join(const boost::json::value& args);

// sync:presence_subscribe {channel?}, sync:presence_request {channel?},
// sync:presence_update {channel?, state}, sync:applied {channel?, version}:
// the JSON protocol's presence frames (codec/presence_codec.h) for one of
// the socket's channels (its only one when none is named).
struct PresenceEvent {
  std::optional<std::string> channel;
  std::variant<PresenceSubscribe, PresenceRequest, api::PresenceUpdate, api::Applied> what;
};
// Whether `name` is one of those events.
bool is_presence_event(std::string_view name);
std::variant<PresenceEvent, Error> decode_presence_event(std::string_view name, const boost::json::value& args);

// sync:get_changes {channel | userId, since?, limit?}
struct ChangesRequest {
  std::string channel;
  std::int64_t since = 0;
  int limit = 0;  // 0: syncd's page size
};
std::variant<ChangesRequest, Error> decode_get_changes(const boost::json::value& args);

// A CONNECT payload: the token, and what connection state recovery presents.
struct ConnectAuth {
  std::optional<std::string> token;
  std::string pid;
  std::string offset;
};
ConnectAuth decode_connect_auth(const boost::json::value& data);

// One change from a client. `id` is set whenever the change has a string
// id, even when it is refused, so the refusal can name it.
std::variant<Change, Error> decode_change(const boost::json::value& change, const ParseLimits& limits,
                                          std::string* id);

// A stored patch as a change object (JSON text).
std::string change_json(const api::Patch& patch, std::string_view channel);
// The answer to one change: {changeId, success, timestamp[, duplicate][, error]}.
std::string change_ack_json(const api::Ack& ack);
// {success: false, error: {code, message}}, or with a changeId when one is known.
std::string failure_json(std::string_view code, std::string_view message, std::string_view change_id = {});
// {code, message[, channel]}: the payload of a sync:error event.
std::string error_json(std::string_view code, std::string_view message, std::string_view channel = {});
// {success: true, channel, timestamp}: a join's answer.
std::string joined_json(std::string_view channel, std::int64_t version);
// {channel, timestamp}: a sync:reset event's payload.
std::string reset_json(std::string_view channel, std::int64_t version);
// {changes, latestTimestamp, hasMore}: a get_changes answer.
std::string changes_page_json(const api::GetChangesResponse& page, std::string_view channel);

}  // namespace bridge::codec
