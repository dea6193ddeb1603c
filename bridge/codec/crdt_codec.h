#pragma once
// The CRDT change-relay dialect (cr-sqlite style clients) on /crdt:
//   client  {"type":"update","changes":[...],"version":v,"siteId":s,"channel":c}
//           {"type":"pull","version":v,"siteId":s,"channel":c}
//   server  {"type":"connected","siteId":S,"version":V,"channel":C}
//           {"type":"ack","siteId":S,"version":V,"channel":C}
//           {"type":"update","changes":[...],"version":V,"siteId":S,"channel":C}
// An update is stored as an `opaque` patch: data {"changes": [...]}, the
// sender's (siteId, version) as the patch's peer clock, and the id
// "crdt:<siteId>:<version>", so a resent update is stored once.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "api/messages.h"
#include "codec/json_codec.h"

namespace bridge::codec {

struct CrdtPull {
  std::int64_t version = 0;
};

using CrdtMessage = std::variant<api::Patch, CrdtPull>;

// One text frame from a CRDT client of `channel`.
std::variant<CrdtMessage, Error> decode_crdt_frame(std::string_view frame, const std::string& channel,
                                                   const ParseLimits& limits = {});

std::string encode_connected(const std::string& site_id, std::int64_t version, const std::string& channel);
std::string encode_crdt_ack(const std::string& site_id, std::int64_t version, const std::string& channel);
// The changes of stored opaque patches, as one update.
std::string encode_crdt_update(const google::protobuf::ListValue& changes, std::int64_t version,
                               const std::string& site_id, const std::string& channel);
// Appends the changes an opaque patch carries (data.changes) to `out`.
void append_changes(const api::Patch& patch, google::protobuf::ListValue* out);

}  // namespace bridge::codec
