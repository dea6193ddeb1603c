#include "codec/json_codec.h"

#include <algorithm>
#include <cmath>

#include "codec/json_values.h"

namespace bridge::codec {

namespace bj = boost::json;
using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

namespace {
constexpr double kMaxExactInteger = 9007199254740991.0;  // 2^53 - 1
}  // namespace

void to_value(const bj::value& j, Value* out) {
  switch (j.kind()) {
    case bj::kind::null:
      out->set_null_value(google::protobuf::NULL_VALUE);
      return;
    case bj::kind::bool_:
      out->set_bool_value(j.get_bool());
      return;
    case bj::kind::int64:
      out->set_number_value(static_cast<double>(j.get_int64()));
      return;
    case bj::kind::uint64:
      out->set_number_value(static_cast<double>(j.get_uint64()));
      return;
    case bj::kind::double_:
      out->set_number_value(j.get_double());
      return;
    case bj::kind::string:
      out->set_string_value(j.get_string().data(), j.get_string().size());
      return;
    case bj::kind::array: {
      ListValue* list = out->mutable_list_value();
      list->mutable_values()->Reserve(static_cast<int>(j.get_array().size()));
      for (const bj::value& item : j.get_array()) to_value(item, list->add_values());
      return;
    }
    case bj::kind::object: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const auto& item : j.get_object()) to_value(item.value(), &(*fields)[std::string(item.key())]);
      return;
    }
  }
}

std::size_t encoded_size_floor(const bj::value& j) {
  switch (j.kind()) {
    case bj::kind::string:
      return j.get_string().size();
    case bj::kind::int64:
    case bj::kind::uint64:
    case bj::kind::double_:
      return 8;
    case bj::kind::array: {
      std::size_t n = 0;
      for (const bj::value& item : j.get_array()) n += encoded_size_floor(item);
      return n;
    }
    case bj::kind::object: {
      std::size_t n = 0;
      for (const auto& item : j.get_object()) n += item.key().size() + encoded_size_floor(item.value());
      return n;
    }
    default:
      return 1;
  }
}

Json from_struct(const Struct& s) {
  // Map keys are unique: append without the ordered object's linear lookup.
  Json out = Json::object();
  auto& members = out.get_ref<Json::object_t&>();
  members.reserve(s.fields().size());
  for (const auto& [key, value] : s.fields()) members.emplace_back(key, from_value(value));
  return out;
}

Json from_value(const Value& v) {
  switch (v.kind_case()) {
    case Value::kBoolValue:
      return v.bool_value();
    case Value::kNumberValue: {
      const double d = v.number_value();
      // Integers print as integers ("42", not "42.0").
      if (std::trunc(d) == d && std::fabs(d) <= kMaxExactInteger) return static_cast<std::int64_t>(d);
      return d;
    }
    case Value::kStringValue:
      return v.string_value();
    case Value::kStructValue:
      return from_struct(v.struct_value());
    case Value::kListValue: {
      Json out = Json::array();
      for (const Value& item : v.list_value().values()) out.push_back(from_value(item));
      return out;
    }
    default:
      return nullptr;
  }
}

namespace {

Error invalid_patch(std::string message) { return {"invalid_patch", std::move(message)}; }

// Reads an optional string field; an error when present with another type.
std::optional<Error> take_string(const bj::object& j, std::string_view key, std::string* out) {
  const bj::value* v = j.if_contains(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_string()) return invalid_patch(std::string(key) + " must be a string");
  out->assign(v->get_string().data(), v->get_string().size());
  return std::nullopt;
}

// An integer field that fits int64 (whole-valued floats such as 1.0 too).
std::optional<Error> take_integer(const bj::object& j, std::string_view key, std::int64_t* out, bool* present) {
  const bj::value* v = j.if_contains(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_int64()) {
    *out = v->get_int64();
  } else if (v->is_uint64()) {
    return invalid_patch(std::string(key) + " is too large");  // the parser keeps int64 when it fits
  } else if (v->is_double() && std::trunc(v->get_double()) == v->get_double() &&
             std::fabs(v->get_double()) < 9.2e18) {
    *out = static_cast<std::int64_t>(v->get_double());
  } else {
    return invalid_patch(std::string(key) + " must be an integer");
  }
  if (present != nullptr) *present = true;
  return std::nullopt;
}

std::variant<ClientMessage, Error> decode_patch(const bj::value& value, std::size_t max_bytes) {
  if (!value.is_object()) return invalid_patch("a patch payload must be an object");
  const bj::object& payload = value.get_object();
  if (const std::size_t floor = encoded_size_floor(value); max_bytes > 0 && floor > max_bytes) {
    const bj::string* id = find_string(payload, "id");
    if (id == nullptr || id->empty()) return invalid_patch("a patch needs an id (a non-empty string)");
    return ClientMessage{OversizePatch{std::string(id->data(), id->size()), floor}};
  }
  api::Patch p;
  static const std::pair<std::string_view, std::string* (api::Patch::*)()> kStrings[] = {
      {"id", &api::Patch::mutable_id},
      {"clientId", &api::Patch::mutable_client_id},
      {"op", &api::Patch::mutable_op},
      {"nodeId", &api::Patch::mutable_node_id},
      {"edgeId", &api::Patch::mutable_edge_id},
      {"targetType", &api::Patch::mutable_target_type},
      {"targetId", &api::Patch::mutable_target_id},
      {"propertyKey", &api::Patch::mutable_property_key},
  };
  for (const auto& [key, field] : kStrings) {
    if (auto e = take_string(payload, key, (p.*field)())) return *e;
  }
  if (p.id().empty()) return invalid_patch("a patch needs an id (a non-empty string)");
  if (p.op().empty()) return invalid_patch("patch " + p.id().substr(0, 128) + " needs an op");

  std::int64_t n = 0;
  if (auto e = take_integer(payload, "timestamp", &n, nullptr)) return *e;
  p.set_timestamp(n);
  bool has_base = false;
  if (auto e = take_integer(payload, "baseVersion", &n, &has_base)) return *e;
  if (has_base) p.set_base_version(n);

  if (const bj::value* v = payload.if_contains("propertyValue")) to_value(*v, p.mutable_property_value());
  if (const bj::value* v = payload.if_contains("data"); v != nullptr && !v->is_null()) {
    if (!v->is_object()) return invalid_patch("data must be an object");
    Value data;
    to_value(*v, &data);
    *p.mutable_data() = std::move(*data.mutable_struct_value());
  }
  static constexpr std::string_view kKnown[] = {"id", "clientId", "op", "nodeId", "edgeId", "targetType",
                                                "targetId", "propertyKey", "propertyValue", "data", "timestamp",
                                                "baseVersion", "serverVersion"};
  for (const auto& item : payload) {
    const std::string_view key(item.key().data(), item.key().size());
    if (std::find(std::begin(kKnown), std::end(kKnown), key) != std::end(kKnown)) continue;
    to_value(item.value(), &(*p.mutable_extra()->mutable_fields())[std::string(key)]);
  }
  return ClientMessage{std::move(p)};
}

Json patch_json(const api::Patch& p) {
  Json out = Json::object();
  out["id"] = p.id();
  if (p.timestamp() != 0) out["timestamp"] = p.timestamp();
  if (!p.client_id().empty()) out["clientId"] = p.client_id();
  out["op"] = p.op();
  if (!p.node_id().empty()) out["nodeId"] = p.node_id();
  if (!p.edge_id().empty()) out["edgeId"] = p.edge_id();
  if (!p.target_type().empty()) out["targetType"] = p.target_type();
  if (!p.target_id().empty()) out["targetId"] = p.target_id();
  if (!p.property_key().empty()) out["propertyKey"] = p.property_key();
  if (p.has_property_value()) out["propertyValue"] = from_value(p.property_value());
  if (p.has_data()) out["data"] = from_struct(p.data());
  if (p.has_base_version()) out["baseVersion"] = p.base_version();
  // Unknown keys follow; one that repeats a field above (only a gRPC client
  // can send that) replaces it in place. Only those few fields are searched,
  // so a patch of many unknown keys is encoded in linear time.
  auto& members = out.get_ref<Json::object_t&>();
  const std::size_t fields = members.size();
  for (const auto& entry : p.extra().fields()) {
    const std::string& key = entry.first;
    const google::protobuf::Value& value = entry.second;
    const auto end = members.begin() + static_cast<std::ptrdiff_t>(fields);
    auto same = std::find_if(members.begin(), end, [&](const auto& m) { return m.first == key; });
    if (same != end) {
      same->second = from_value(value);
    } else {
      members.emplace_back(key, from_value(value));
    }
  }
  if (p.server_version() != 0) out["serverVersion"] = p.server_version();
  return out;
}

}  // namespace

std::string frame(const char* type, Json payload) {
  Json out = Json::object();
  out["type"] = type;
  out["payload"] = std::move(payload);
  return dump(out);
}

std::string dump(const Json& j) {
  // Invalid UTF-8 cannot come from syncd (protobuf strings are UTF-8), but
  // replace rather than throw if it ever does.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<Error> read_integer(const bj::object& j, std::string_view key, std::int64_t* out, bool* present) {
  return take_integer(j, key, out, present);
}

const bj::string* find_string(const bj::object& j, std::string_view key) {
  const bj::value* v = j.if_contains(key);
  return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
}

std::variant<ClientMessage, Error> decode_client_frame(std::string_view text, const ParseLimits& limits) {
  auto parsed = parse_json(text, limits);
  if (auto* e = std::get_if<ParseError>(&parsed)) return Error{std::move(e->code), std::move(e->message)};
  const bj::value& j = std::get<bj::value>(parsed);
  if (!j.is_object()) return Error{"invalid_message", "a frame must be a JSON object {\"type\":..., \"payload\":...}"};
  const bj::string* type = find_string(j.get_object(), "type");
  if (type == nullptr) return Error{"invalid_message", "the frame has no \"type\" string"};
  const std::string_view t(type->data(), type->size());
  static const bj::value kNull;
  const bj::value* found = j.get_object().if_contains("payload");
  const bj::value& payload = found != nullptr ? *found : kNull;
  if (t == "patch") return decode_patch(payload, limits.max_patch_bytes);
  if (t == "heartbeat") return ClientMessage{Heartbeat{}};
  if (t == "auth") {
    const bj::string* token = payload.is_object() ? find_string(payload.get_object(), "token") : nullptr;
    if (token == nullptr || token->empty()) {
      return Error{"invalid_message", "auth's payload must be {\"token\": \"<JWT>\"}"};
    }
    api::Refresh refresh;
    refresh.set_token(token->data(), token->size());
    return ClientMessage{std::move(refresh)};
  }
  if (t == "sync_request") {
    api::SyncRequest req;
    if (!payload.is_null() && !payload.is_object()) {
      return Error{"invalid_message", "sync_request's payload must be an object"};
    }
    std::int64_t n = 0;
    if (payload.is_object()) {
      if (auto e = take_integer(payload.get_object(), "fromVersion", &n, nullptr)) {
        return Error{"invalid_message", e->message};
      }
      if (n < 0) return Error{"invalid_message", "fromVersion must be >= 0"};
      req.set_from_version(n);
      n = 0;
      if (auto e = take_integer(payload.get_object(), "limit", &n, nullptr)) return Error{"invalid_message", e->message};
      if (n < 0 || n > INT32_MAX) return Error{"invalid_message", "limit must be between 0 and 2^31-1"};
      req.set_limit(static_cast<std::int32_t>(n));
    }
    return ClientMessage{req};
  }
  if (is_presence_type(t)) {
    return std::visit([](auto&& m) -> std::variant<ClientMessage, Error> {
      if constexpr (std::is_same_v<std::decay_t<decltype(m)>, Error>) {
        return std::move(m);
      } else {
        return ClientMessage{std::move(m)};
      }
    }, decode_presence(t, payload));
  }
  return Error{"unknown_type", "unknown message type \"" + printable_prefix(t) +
                                   "\"; expected patch, sync_request, heartbeat, auth, presence_subscribe, "
                                   "presence_request, presence_update or applied"};
}

std::string_view status_word(api::Ack::Status status) {
  switch (status) {
    case api::Ack::ACCEPTED: return "accepted";
    case api::Ack::REJECTED: return "rejected";
    case api::Ack::IGNORED: return "ignored";
    default: return "unknown";
  }
}

std::string encode_ack(const api::Ack& ack) {
  Json p = Json::object();
  p["patchId"] = ack.patch_id();
  p["status"] = status_word(ack.status());
  p["serverVersion"] = ack.server_version();
  if (!ack.code().empty()) p["code"] = ack.code();
  if (!ack.reason().empty()) p["reason"] = ack.reason();
  return frame("patch_response", std::move(p));
}

std::string encode_broadcast(const api::Patch& patch) { return frame("patch_broadcast", patch_json(patch)); }

std::string encode_sync_state(const api::SyncState& state) {
  Json p = Json::object();
  p["version"] = state.version();
  Json patches = Json::array();
  for (const auto& patch : state.patches()) patches.push_back(patch_json(patch));
  p["patches"] = std::move(patches);
  p["hasMore"] = state.has_more();
  if (state.snapshot()) p["snapshot"] = true;  // replace the local state with what follows
  return frame("sync_state", std::move(p));
}

std::string encode_error(std::string_view code, std::string_view message) {
  Json p = Json::object();
  p["code"] = code;
  p["message"] = message;
  return frame("error", std::move(p));
}

std::string patch_to_json(const api::Patch& patch) { return dump(patch_json(patch)); }

std::variant<api::Patch, Error> patch_from_json(std::string_view text, const ParseLimits& limits) {
  auto parsed = parse_json(text, limits);
  if (auto* e = std::get_if<ParseError>(&parsed)) return Error{std::move(e->code), std::move(e->message)};
  auto decoded = decode_patch(std::get<bj::value>(parsed), 0);
  if (auto* e = std::get_if<Error>(&decoded)) return *e;
  return std::get<api::Patch>(std::get<ClientMessage>(decoded));
}

std::string printable_prefix(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 64)) out += c >= 0x20 && c < 0x7f ? c : '?';
  return out;
}

}  // namespace bridge::codec
