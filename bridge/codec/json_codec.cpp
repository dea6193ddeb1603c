#include "codec/json_codec.h"

#include <cmath>

#include "codec/json_values.h"

namespace bridge::codec {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

namespace {
constexpr int kMaxDepth = 64;  // syncd refuses far less; this only bounds the recursion here
constexpr double kMaxExactInteger = 9007199254740991.0;  // 2^53 - 1
}  // namespace

bool to_value(const Json& j, Value* out, int depth) {
  if (depth > kMaxDepth) return false;
  switch (j.type()) {
    case Json::value_t::null:
      out->set_null_value(google::protobuf::NULL_VALUE);
      return true;
    case Json::value_t::boolean:
      out->set_bool_value(j.get<bool>());
      return true;
    case Json::value_t::number_integer:
      out->set_number_value(static_cast<double>(j.get<std::int64_t>()));
      return true;
    case Json::value_t::number_unsigned:
      out->set_number_value(static_cast<double>(j.get<std::uint64_t>()));
      return true;
    case Json::value_t::number_float:
      out->set_number_value(j.get<double>());
      return true;
    case Json::value_t::string:
      out->set_string_value(j.get_ref<const std::string&>());
      return true;
    case Json::value_t::array: {
      ListValue* list = out->mutable_list_value();
      for (const Json& item : j) {
        if (!to_value(item, list->add_values(), depth + 1)) return false;
      }
      return true;
    }
    case Json::value_t::object: {
      Struct* s = out->mutable_struct_value();
      for (const auto& [key, item] : j.items()) {
        if (!to_value(item, &(*s->mutable_fields())[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

Json from_struct(const Struct& s) {
  Json out = Json::object();
  for (const auto& [key, value] : s.fields()) out[key] = from_value(value);
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
std::optional<Error> take_string(const Json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return invalid_patch(std::string(key) + " must be a string");
  *out = it->get<std::string>();
  return std::nullopt;
}

// An integer field that fits int64 (whole-valued floats such as 1.0 too).
std::optional<Error> take_integer(const Json& j, const char* key, std::int64_t* out, bool* present) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
      return invalid_patch(std::string(key) + " is too large");
    }
    *out = it->get<std::int64_t>();
  } else if (it->is_number_float() && std::trunc(it->get<double>()) == it->get<double>() &&
             std::fabs(it->get<double>()) < 9.2e18) {
    *out = static_cast<std::int64_t>(it->get<double>());
  } else {
    return invalid_patch(std::string(key) + " must be an integer");
  }
  if (present != nullptr) *present = true;
  return std::nullopt;
}

std::variant<ClientMessage, Error> decode_patch(const Json& payload) {
  if (!payload.is_object()) return invalid_patch("a patch payload must be an object");
  api::Patch p;
  static const std::pair<const char*, std::string* (api::Patch::*)()> kStrings[] = {
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
  if (p.op().empty()) return invalid_patch("patch " + p.id() + " needs an op");

  std::int64_t n = 0;
  if (auto e = take_integer(payload, "timestamp", &n, nullptr)) return *e;
  p.set_timestamp(n);
  bool has_base = false;
  if (auto e = take_integer(payload, "baseVersion", &n, &has_base)) return *e;
  if (has_base) p.set_base_version(n);

  if (auto it = payload.find("propertyValue"); it != payload.end()) {
    if (!to_value(*it, p.mutable_property_value(), 1)) return invalid_patch("propertyValue is nested too deeply");
  }
  if (auto it = payload.find("data"); it != payload.end() && !it->is_null()) {
    if (!it->is_object()) return invalid_patch("data must be an object");
    Value v;
    if (!to_value(*it, &v, 1)) return invalid_patch("data is nested too deeply");
    *p.mutable_data() = std::move(*v.mutable_struct_value());
  }
  static const char* const kKnown[] = {"id", "clientId", "op", "nodeId", "edgeId", "targetType", "targetId",
                                       "propertyKey", "propertyValue", "data", "timestamp", "baseVersion",
                                       "serverVersion"};
  for (auto item = payload.begin(); item != payload.end(); ++item) {
    const std::string& key = item.key();
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return key == k; }) !=
        std::end(kKnown)) {
      continue;
    }
    if (!to_value(item.value(), &(*p.mutable_extra()->mutable_fields())[key], 1)) {
      return invalid_patch(key + " is nested too deeply");
    }
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
  for (const auto& [key, value] : p.extra().fields()) out[key] = from_value(value);
  if (p.server_version() != 0) out["serverVersion"] = p.server_version();
  return out;
}

std::string frame(const char* type, Json payload) {
  Json out = Json::object();
  out["type"] = type;
  out["payload"] = std::move(payload);
  return dump(out);
}

}  // namespace

std::string dump(const Json& j) {
  // Invalid UTF-8 cannot come from syncd (protobuf strings are UTF-8), but
  // replace rather than throw if it ever does.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<Error> read_integer(const Json& j, const char* key, std::int64_t* out, bool* present) {
  return take_integer(j, key, out, present);
}

std::variant<ClientMessage, Error> decode_client_frame(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"invalid_json", "the frame is not valid JSON"};
  if (!j.is_object()) return Error{"invalid_message", "a frame must be a JSON object {\"type\":..., \"payload\":...}"};
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) {
    return Error{"invalid_message", "the frame has no \"type\" string"};
  }
  const std::string& t = type->get_ref<const std::string&>();
  const Json payload = j.contains("payload") ? j["payload"] : Json();
  if (t == "patch") return decode_patch(payload);
  if (t == "heartbeat") return ClientMessage{Heartbeat{}};
  if (t == "auth") {
    auto token = payload.is_object() ? payload.find("token") : payload.end();
    if (!payload.is_object() || token == payload.end() || !token->is_string() || token->get_ref<const std::string&>().empty()) {
      return Error{"invalid_message", "auth's payload must be {\"token\": \"<JWT>\"}"};
    }
    api::Refresh refresh;
    refresh.set_token(token->get<std::string>());
    return ClientMessage{std::move(refresh)};
  }
  if (t == "sync_request") {
    api::SyncRequest req;
    if (!payload.is_null() && !payload.is_object()) {
      return Error{"invalid_message", "sync_request's payload must be an object"};
    }
    std::int64_t n = 0;
    if (payload.is_object()) {
      if (auto e = take_integer(payload, "fromVersion", &n, nullptr)) return Error{"invalid_message", e->message};
      if (n < 0) return Error{"invalid_message", "fromVersion must be >= 0"};
      req.set_from_version(n);
      n = 0;
      if (auto e = take_integer(payload, "limit", &n, nullptr)) return Error{"invalid_message", e->message};
      if (n < 0 || n > INT32_MAX) return Error{"invalid_message", "limit must be between 0 and 2^31-1"};
      req.set_limit(static_cast<std::int32_t>(n));
    }
    return ClientMessage{req};
  }
  return Error{"unknown_type", "unknown message type \"" + t.substr(0, 64) +
                                   "\"; expected patch, sync_request, heartbeat or auth"};
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
  return frame("sync_state", std::move(p));
}

std::string encode_error(std::string_view code, std::string_view message) {
  Json p = Json::object();
  p["code"] = code;
  p["message"] = message;
  return frame("error", std::move(p));
}

std::string patch_to_json(const api::Patch& patch) { return dump(patch_json(patch)); }

std::variant<api::Patch, Error> patch_from_json(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"invalid_json", "not valid JSON"};
  auto decoded = decode_patch(j);
  if (auto* e = std::get_if<Error>(&decoded)) return *e;
  return std::get<api::Patch>(std::get<ClientMessage>(decoded));
}

}  // namespace bridge::codec
