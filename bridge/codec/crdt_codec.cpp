#include "codec/crdt_codec.h"

#include "codec/json_values.h"

namespace bridge::codec {

namespace bj = boost::json;

std::variant<CrdtMessage, Error> decode_crdt_frame(std::string_view text, const std::string& channel,
                                                   const ParseLimits& limits) {
  auto parsed = parse_json(text, limits);
  if (auto* e = std::get_if<ParseError>(&parsed)) return Error{std::move(e->code), std::move(e->message)};
  const bj::value& value = std::get<bj::value>(parsed);
  const bj::string* type = value.is_object() ? find_string(value.get_object(), "type") : nullptr;
  if (type == nullptr) return Error{"invalid_message", "a frame must be a JSON object with a \"type\" string"};
  const bj::object& j = value.get_object();
  if (const bj::value* c = j.if_contains("channel"); c != nullptr && !c->is_null() &&
                                                     !(c->is_string() && c->get_string() == channel)) {
    return Error{"invalid_message", "this socket is on channel " + channel + "; open another for another channel"};
  }
  std::int64_t version = 0;
  bool has_version = false;
  if (auto e = read_integer(j, "version", &version, &has_version)) return Error{"invalid_message", e->message};
  if (version < 0) return Error{"invalid_message", "version must be >= 0"};
  const std::string_view t(type->data(), type->size());
  if (t == "pull") return CrdtMessage{CrdtPull{version}};
  if (t != "update") {
    return Error{"unknown_type", "unknown message type \"" + printable_prefix(t) + "\"; expected update or pull"};
  }
  const bj::string* site = find_string(j, "siteId");
  if (site == nullptr || site->empty()) return Error{"invalid_patch", "an update needs a siteId (a non-empty string)"};
  if (!has_version) return Error{"invalid_patch", "an update needs its version"};
  const bj::value* changes = j.if_contains("changes");
  if (changes == nullptr || !changes->is_array()) return Error{"invalid_patch", "an update needs a changes array"};
  if (const std::size_t floor = encoded_size_floor(*changes); limits.max_patch_bytes > 0 && floor > limits.max_patch_bytes) {
    return Error{"too_large", "the update is at least " + std::to_string(floor) + " bytes encoded; the limit is " +
                                  std::to_string(limits.max_patch_bytes)};
  }

  api::Patch p;
  const std::string site_id(site->data(), site->size());
  p.set_id("crdt:" + site_id + ":" + std::to_string(version));
  p.set_client_id(site_id);
  p.set_op("opaque");
  p.mutable_peer()->set_site_id(site_id);
  p.mutable_peer()->set_version(version);
  to_value(*changes, &(*p.mutable_data()->mutable_fields())["changes"]);
  return CrdtMessage{std::move(p)};
}

namespace {

std::string crdt_frame(const char* type, const std::string& site_id, std::int64_t version, const std::string& channel) {
  Json j = Json::object();
  j["type"] = type;
  j["siteId"] = site_id;
  j["version"] = version;
  j["channel"] = channel;
  return dump(j);
}

}  // namespace

std::string encode_connected(const std::string& site_id, std::int64_t version, const std::string& channel) {
  return crdt_frame("connected", site_id, version, channel);
}

std::string encode_crdt_ack(const std::string& site_id, std::int64_t version, const std::string& channel) {
  return crdt_frame("ack", site_id, version, channel);
}

std::string encode_crdt_update(const google::protobuf::ListValue& changes, std::int64_t version,
                               const std::string& site_id, const std::string& channel) {
  Json j = Json::object();
  j["type"] = "update";
  google::protobuf::Value v;
  *v.mutable_list_value() = changes;
  j["changes"] = from_value(v);
  j["version"] = version;
  j["siteId"] = site_id;
  j["channel"] = channel;
  return dump(j);
}

void append_changes(const api::Patch& patch, google::protobuf::ListValue* out) {
  auto it = patch.data().fields().find("changes");
  if (it == patch.data().fields().end()) return;
  if (it->second.has_list_value()) {
    for (const auto& c : it->second.list_value().values()) *out->add_values() = c;
  } else {
    *out->add_values() = it->second;
  }
}

}  // namespace bridge::codec
