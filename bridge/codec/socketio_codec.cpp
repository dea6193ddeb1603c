#include "codec/socketio_codec.h"

#include "codec/json_values.h"

namespace bridge::codec {

namespace bj = boost::json;

namespace {

const bj::string* string_field(const bj::object& j, std::string_view key) { return find_string(j, key); }

std::string text(const bj::string* s) { return s == nullptr ? std::string() : std::string(s->data(), s->size()); }

}  // namespace

std::variant<Change, Error> decode_change(const bj::value& value, const ParseLimits& limits, std::string* id) {
  if (!value.is_object()) return Error{"invalid_patch", "a change is a JSON object"};
  const bj::object& j = value.get_object();
  const bj::string* change_id = string_field(j, "id");
  if (change_id == nullptr || change_id->empty() || change_id->size() > 128) {
    return Error{"invalid_patch", "a change needs an id: a string of 1-128 characters"};
  }
  *id = text(change_id);
  Change out;
  if (const bj::value* c = j.if_contains("channel"); c != nullptr && !c->is_null()) {
    if (!c->is_string()) return Error{"invalid_patch", "a change's channel is a string"};
    out.channel = std::string(c->get_string());
  }
  if (const std::size_t floor = encoded_size_floor(value); limits.max_patch_bytes > 0 && floor > limits.max_patch_bytes) {
    out.patch = OversizePatch{*id, floor};
    return out;
  }
  const bj::string* operation = string_field(j, "operation");
  if (operation == nullptr) return Error{"invalid_patch", "a change needs an operation: insert, update or delete"};
  api::Patch p;
  p.set_id(*id);
  std::int64_t timestamp = 0;
  bool has_timestamp = false;
  if (auto e = read_integer(j, "timestamp", &timestamp, &has_timestamp)) return Error{"invalid_patch", e->message};
  p.set_timestamp(timestamp);
  if (const bj::value* user = j.if_contains("userId"); user != nullptr && !user->is_null()) {
    if (!user->is_string()) return Error{"invalid_patch", "a change's userId is a string"};
    p.set_client_id(std::string(user->get_string()));
  }
  const bool node_op = *operation == "insert" || *operation == "update" || *operation == "delete";
  if (!node_op) {
    // Any other operation rides as opaque: the change itself, stored and relayed.
    p.set_op("opaque");
    to_value(value, &(*p.mutable_data()->mutable_fields())["change"]);
    out.patch = std::move(p);
    return out;
  }
  const bj::string* collection = string_field(j, "collection");
  const bj::string* document = string_field(j, "documentId");
  if (document == nullptr || document->empty()) return Error{"invalid_patch", "a change needs a documentId (a string)"};
  p.set_node_id(text(document));
  const bj::value* data = j.if_contains("data");
  if (data != nullptr && !data->is_null() && !data->is_object()) {
    return Error{"invalid_patch", "a change's data is a JSON object"};
  }
  auto* fields = p.mutable_data()->mutable_fields();
  if (*operation == "delete") {
    // A deleted node's label is gone from the state; the change keeps it.
    p.set_op("delete_node");
    if (collection != nullptr) (*p.mutable_extra()->mutable_fields())["collection"].set_string_value(text(collection));
  } else {
    if (*operation == "insert" && (collection == nullptr || collection->empty())) {
      return Error{"invalid_patch", "an insert needs a collection (a string): the node's label"};
    }
    p.set_op(*operation == "insert" ? "create_node" : "update_node");
    if (collection != nullptr && !collection->empty()) (*fields)["label"].set_string_value(text(collection));
    auto* props = (*fields)["properties"].mutable_struct_value();
    if (data != nullptr && data->is_object()) {
      google::protobuf::Value v;
      to_value(*data, &v);
      *props = std::move(*v.mutable_struct_value());
    }
  }
  out.patch = std::move(p);
  return out;
}

std::string change_json(const api::Patch& p, std::string_view channel) {
  const auto& fields = p.data().fields();
  Json j = Json::object();
  if (p.op() == "opaque") {
    if (auto it = fields.find("change"); it != fields.end() && it->second.has_struct_value()) {
      j = from_struct(it->second.struct_value());
      j["timestamp"] = p.server_version();
      j["channel"] = channel;
      return dump(j);
    }
  }
  const char* operation = p.op() == "create_node"   ? "insert"
                          : p.op() == "update_node" ? "update"
                          : p.op() == "delete_node" ? "delete"
                                                    : nullptr;
  j["id"] = p.id();
  if (operation != nullptr) {
    auto label = fields.find("label");
    auto kept = p.extra().fields().find("collection");
    if (label != fields.end() && label->second.has_string_value()) {
      j["collection"] = label->second.string_value();
    } else if (kept != p.extra().fields().end() && kept->second.has_string_value()) {
      j["collection"] = kept->second.string_value();
    }
    j["documentId"] = p.node_id();
    j["operation"] = operation;
    auto props = fields.find("properties");
    j["data"] = props != fields.end() && props->second.has_struct_value() ? from_struct(props->second.struct_value())
                                                                           : Json::object();
  } else {
    j["operation"] = p.op();
    j["patch"] = Json::parse(patch_to_json(p), nullptr, false);
  }
  j["timestamp"] = p.server_version();
  if (!p.client_id().empty()) j["userId"] = p.client_id();
  j["channel"] = channel;
  return dump(j);
}

std::string change_ack_json(const api::Ack& ack) {
  Json j = Json::object();
  j["changeId"] = ack.patch_id();
  j["success"] = ack.status() != api::Ack::REJECTED;
  j["timestamp"] = ack.server_version();
  if (ack.status() == api::Ack::IGNORED) j["duplicate"] = true;
  if (ack.status() == api::Ack::REJECTED) {
    j["error"] = Json::object({{"code", ack.code()}, {"message", ack.reason()}});
  }
  return dump(j);
}

std::string failure_json(std::string_view code, std::string_view message, std::string_view change_id) {
  Json j = Json::object();
  if (!change_id.empty()) j["changeId"] = change_id;
  j["success"] = false;
  j["error"] = Json::object({{"code", code}, {"message", message}});
  return dump(j);
}

std::string error_json(std::string_view code, std::string_view message, std::string_view channel) {
  Json j = Json::object({{"code", code}, {"message", message}});
  if (!channel.empty()) j["channel"] = channel;
  return dump(j);
}

std::string joined_json(std::string_view channel, std::int64_t version) {
  return dump(Json::object({{"success", true}, {"channel", channel}, {"timestamp", version}}));
}

std::string reset_json(std::string_view channel, std::int64_t version) {
  return dump(Json::object({{"channel", channel}, {"timestamp", version}}));
}

std::string changes_page_json(const api::GetChangesResponse& page, std::string_view channel) {
  std::string out = "{\"changes\":[";
  for (int i = 0; i < page.patches_size(); ++i) {
    if (i > 0) out += ',';
    out += change_json(page.patches(i), channel);
  }
  out += "],\"latestTimestamp\":" + std::to_string(page.version()) +
         ",\"hasMore\":" + (page.has_more() ? "true" : "false") + "}";
  return out;
}

}  // namespace bridge::codec
