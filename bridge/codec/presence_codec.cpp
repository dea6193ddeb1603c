#include "codec/presence_codec.h"

#include "codec/json_codec.h"
#include "codec/json_values.h"

namespace bridge::codec {

namespace {

Json member_json(const api::PresenceMember& m) {
  Json out = Json::object();
  out["connectionId"] = m.connection_id();
  out["clientId"] = m.client_id();
  if (!m.subject().empty()) out["subject"] = m.subject();
  out["transport"] = m.transport();
  out["connectedAt"] = m.connected_at();
  out["state"] = from_struct(m.state());
  out["deliveredVersion"] = m.delivered_version();
  out["appliedVersion"] = m.applied_version();
  return out;
}

}  // namespace

bool is_presence_type(std::string_view type) {
  return type == "presence_subscribe" || type == "presence_request" || type == "presence_update" ||
         type == "applied";
}

std::variant<PresenceSubscribe, PresenceRequest, api::PresenceUpdate, api::Applied, Error> decode_presence(
    std::string_view type, const boost::json::value& payload) {
  if (type == "presence_subscribe") return PresenceSubscribe{};
  if (type == "presence_request") return PresenceRequest{};
  if (type == "applied") {
    std::int64_t version = -1;
    bool present = false;
    if (!payload.is_object()) return Error{"invalid_message", "applied's payload must be {\"version\": N}"};
    if (auto e = read_integer(payload.get_object(), "version", &version, &present)) {
      return Error{"invalid_message", e->message};
    }
    if (!present || version < 0) return Error{"invalid_message", "applied's payload must be {\"version\": N} with N >= 0"};
    api::Applied applied;
    applied.set_version(version);
    return applied;
  }
  // presence_update
  const boost::json::value* state = payload.is_object() ? payload.get_object().if_contains("state") : nullptr;
  if (state == nullptr || !state->is_object()) {
    return Error{"invalid_message", "presence_update's payload must be {\"state\": {...}} (a JSON object)"};
  }
  google::protobuf::Value value;
  to_value(*state, &value);
  api::PresenceUpdate update;
  *update.mutable_state() = std::move(*value.mutable_struct_value());
  return update;
}

std::string encode_presence_state(const api::PresenceList& list) {
  Json payload = Json::object();
  payload["channel"] = list.channel();
  Json members = Json::array();
  for (const auto& m : list.members()) members.push_back(member_json(m));
  payload["members"] = std::move(members);
  return frame("presence_state", std::move(payload));
}

std::string encode_presence(const api::PresenceEvent& event) {
  switch (event.kind_case()) {
    case api::PresenceEvent::kState: return encode_presence_state(event.state());
    case api::PresenceEvent::kJoin: return frame("presence_join", member_json(event.join()));
    case api::PresenceEvent::kUpdate: return frame("presence_update", member_json(event.update()));
    case api::PresenceEvent::kLeave: return frame("presence_leave", member_json(event.leave()));
    default: return {};
  }
}

}  // namespace bridge::codec
