#include "codec/socketio_codec.h"

#include "auth/client_text.h"
#include "codec/channel_name.h"
#include "codec/json_values.h"

namespace bridge::codec {

namespace bj = boost::json;

namespace {

std::string text(const bj::string* s) { return s == nullptr ? std::string() : std::string(s->data(), s->size()); }

// The channel an event names: `channel`, or `userId` (the demo's rooms).
std::optional<std::string> named_channel(const bj::object& args) {
  const bj::string* name = find_string(args, "channel");
  if (name == nullptr) name = find_string(args, "userId");
  if (name == nullptr || !valid_channel(std::string_view(name->data(), name->size()))) return std::nullopt;
  return text(name);
}

// An optional non-negative integer field.
std::optional<Error> read_count(const bj::object& args, std::string_view key, std::optional<std::int64_t>* out) {
  std::int64_t value = 0;
  bool present = false;
  if (auto e = read_integer(args, key, &value, &present)) return Error{"invalid_message", e->message};
  if (present && value < 0) return Error{"invalid_message", std::string(key) + " must be >= 0"};
  if (present) *out = value;
  return std::nullopt;
}

}  // namespace

std::variant<JoinRequest, Error> decode_join(const bj::value& args) {
  const auto channel = args.is_object() ? named_channel(args.get_object()) : std::nullopt;
  if (!channel) {
    return Error{"invalid_message",
                 "sync:join takes {channel} or {userId}: 1-128 characters of [A-Za-z0-9._:-], and an optional since"};
  }
  JoinRequest join{*channel, std::nullopt};
  const bj::object& j = args.get_object();
  if (auto e = read_count(j, "since", &join.since)) return *e;
  if (const bj::value* presence = j.if_contains("presence")) {
    if (!presence->is_bool()) return Error{"invalid_message", "presence must be true or false"};
    join.presence = presence->get_bool();
  }
  if (const bj::value* client_id = j.if_contains("clientId")) {
    if (!client_id->is_string()) return Error{"invalid_message", "clientId must be a string"};
    join.client_id = text(&client_id->get_string());
    if (auto error = syncd::auth::client_id_error(join.client_id)) return Error{"invalid_message", *error};
  }
  return join;
}

bool is_presence_event(std::string_view name) {
  return name == "sync:presence_subscribe" || name == "sync:presence_request" || name == "sync:presence_update" ||
         name == "sync:applied";
}

std::variant<PresenceEvent, Error> decode_presence_event(std::string_view name, const bj::value& args) {
  static const bj::value kEmpty = bj::object();
  const bj::value& payload = args.is_null() ? kEmpty : args;
  if (!payload.is_object()) {
    return Error{"invalid_message", std::string(name) + " takes an object: {channel?, ...}"};
  }
  PresenceEvent event;
  if (const bj::value* channel = payload.get_object().if_contains("channel")) {
    if (!channel->is_string() || !valid_channel(std::string_view(channel->get_string()))) {
      return Error{"invalid_message", "channel must be 1-128 characters of [A-Za-z0-9._:-]"};
    }
    event.channel = text(&channel->get_string());
  }
  // The rest is the JSON protocol's frame of the same name.
  auto decoded = decode_presence(name.substr(std::string_view("sync:").size()), payload);
  if (auto* err = std::get_if<Error>(&decoded)) return *err;
  std::visit(
      [&](auto&& what) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(what)>, Error>) event.what = std::move(what);
      },
      decoded);
  return event;
}

std::variant<ChangesRequest, Error> decode_get_changes(const bj::value& args) {
  const auto channel = args.is_object() ? named_channel(args.get_object()) : std::nullopt;
  if (!channel) {
    return Error{"invalid_message",
                 "sync:get_changes takes {channel} or {userId}, since (a version) and an optional limit (1-1000)"};
  }
  std::optional<std::int64_t> since, limit;
  if (auto e = read_count(args.get_object(), "since", &since)) return *e;
  if (auto e = read_count(args.get_object(), "limit", &limit)) return *e;
  if (limit && (*limit < 1 || *limit > 1000)) return Error{"invalid_message", "limit must be 1-1000"};
  return ChangesRequest{*channel, since.value_or(0), static_cast<int>(limit.value_or(0))};
}

ConnectAuth decode_connect_auth(const bj::value& data) {
  ConnectAuth auth;
  if (!data.is_object()) return auth;
  const bj::object& j = data.get_object();
  if (const bj::string* token = find_string(j, "token")) auth.token = text(token);
  // Recovery's own fields; anything longer than an offset of this dialect can be is not one.
  const bj::string* pid = find_string(j, "pid");
  const bj::string* offset = find_string(j, "offset");
  if (pid != nullptr && pid->size() <= 64) auth.pid = text(pid);
  if (offset != nullptr && offset->size() <= 160) auth.offset = text(offset);
  return auth;
}

std::variant<Change, Error> decode_change(const bj::value& value, const ParseLimits& limits, std::string* id) {
  if (!value.is_object()) return Error{"invalid_patch", "a change is a JSON object"};
  const bj::object& j = value.get_object();
  const bj::string* change_id = find_string(j, "id");
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
  const bj::string* operation = find_string(j, "operation");
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
  const bj::string* collection = find_string(j, "collection");
  const bj::string* document = find_string(j, "documentId");
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
  // syncd stores ops as their senders spelled them (createNode is create_node).
  const std::string& op = p.op();
  const char* operation = op == "create_node" || op == "createNode"   ? "insert"
                          : op == "update_node" || op == "updateNode" ? "update"
                          : op == "delete_node" || op == "deleteNode" ? "delete"
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
