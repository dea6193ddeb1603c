#include "graph/check.h"

#include <cmath>
#include <string>

#include "graph/json.h"
#include "graph/op.h"

namespace syncd::graph {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

Rejection invalid(std::string reason) { return {"invalid_patch", std::move(reason)}; }

// Walks a JSON-like value, counting values and tracking depth. Returns a
// reason when a limit is crossed or a number is not finite (NaN and the
// infinities have no JSON form, so they could never be stored or relayed).
class ValueWalker {
 public:
  explicit ValueWalker(const Limits& limits) : limits_(limits) {}

  std::optional<std::string> walk(const Value& v, int depth) {
    if (++count_ > limits_.max_data_values) {
      return "data holds more than " + std::to_string(limits_.max_data_values) + " values";
    }
    switch (v.kind_case()) {
      case Value::kNumberValue:
        if (!std::isfinite(v.number_value())) return std::string("numbers must be finite");
        return std::nullopt;
      case Value::kStructValue:
        return walk(v.struct_value(), depth + 1);
      case Value::kListValue:
        if (depth + 1 > limits_.max_data_depth) return too_deep();
        for (const Value& item : v.list_value().values()) {
          if (auto why = walk(item, depth + 1)) return why;
        }
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  std::optional<std::string> walk(const Struct& s, int depth) {
    if (depth > limits_.max_data_depth) return too_deep();
    for (const auto& [key, value] : s.fields()) {
      if (auto why = walk(value, depth)) return why;
    }
    return std::nullopt;
  }

 private:
  std::string too_deep() const {
    return "data is nested deeper than " + std::to_string(limits_.max_data_depth) + " levels";
  }

  const Limits& limits_;
  std::size_t count_ = 0;
};

const Value* field(const Struct& s, const char* name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? nullptr : &it->second;
}

std::optional<Rejection> check_label(const Struct& data, const char* op) {
  const Value* label = field(data, "label");
  if (label == nullptr || label->kind_case() != Value::kStringValue) {
    return invalid(std::string(op) + " needs data.label (a string)");
  }
  if (!valid_identifier(label->string_value())) {
    return invalid("label \"" + label->string_value() + "\" must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  }
  return std::nullopt;
}

std::optional<Rejection> check_properties(const Struct& data, bool required) {
  const Value* props = field(data, "properties");
  if (props == nullptr) {
    if (required) return invalid("data.properties is required");
    return std::nullopt;
  }
  if (props->kind_case() != Value::kStructValue) return invalid("data.properties must be an object");
  for (const auto& [key, value] : props->struct_value().fields()) {
    if (!valid_identifier(key)) {
      return invalid("property key \"" + key + "\" must match [A-Za-z_][A-Za-z0-9_]{0,63}");
    }
  }
  return std::nullopt;
}

std::optional<Rejection> check_node_ref(const Struct& data, const char* name) {
  const Value* v = field(data, name);
  if (v == nullptr || v->kind_case() != Value::kStringValue || !valid_id(v->string_value())) {
    return invalid(std::string("create_edge needs data.") + name + " (a node id)");
  }
  return std::nullopt;
}

std::optional<Rejection> check_target(const api::Patch& p) {
  if (p.target_type() != "node" && p.target_type() != "edge") {
    return invalid("targetType must be \"node\" or \"edge\"");
  }
  if (!valid_id(p.target_id())) return invalid("targetId must be 1-128 characters");
  if (!valid_identifier(p.property_key())) {
    return invalid("propertyKey must match [A-Za-z_][A-Za-z0-9_]{0,63}");
  }
  return std::nullopt;
}

std::optional<Rejection> check_op_fields(Op op, const api::Patch& p) {
  const Struct& data = p.data();
  switch (op) {
    case Op::kCreateNode:
      if (!valid_id(p.node_id())) return invalid("create_node needs nodeId (1-128 characters)");
      if (auto r = check_label(data, "create_node")) return r;
      return check_properties(data, false);
    case Op::kUpdateNode:
    case Op::kUpdateEdge: {
      const bool node = op == Op::kUpdateNode;
      if (!valid_id(node ? p.node_id() : p.edge_id())) {
        return invalid(node ? "update_node needs nodeId" : "update_edge needs edgeId");
      }
      if (field(data, "properties") == nullptr && field(data, "label") == nullptr) {
        return invalid("nothing to update: data needs properties or label");
      }
      if (field(data, "label") != nullptr) {
        if (auto r = check_label(data, node ? "update_node" : "update_edge")) return r;
      }
      return check_properties(data, false);
    }
    case Op::kDeleteNode:
      if (!valid_id(p.node_id())) return invalid("delete_node needs nodeId");
      return std::nullopt;
    case Op::kCreateEdge:
      if (!valid_id(p.edge_id())) return invalid("create_edge needs edgeId (1-128 characters)");
      if (auto r = check_label(data, "create_edge")) return r;
      if (auto r = check_node_ref(data, "fromNodeId")) return r;
      if (auto r = check_node_ref(data, "toNodeId")) return r;
      return check_properties(data, false);
    case Op::kDeleteEdge:
      if (!valid_id(p.edge_id())) return invalid("delete_edge needs edgeId");
      return std::nullopt;
    case Op::kSetProperty:
      if (auto r = check_target(p)) return r;
      if (!p.has_property_value()) return invalid("set_property needs propertyValue");
      return std::nullopt;
    case Op::kRemoveProperty:
      return check_target(p);
    case Op::kOpaque:
      return std::nullopt;
  }
  return invalid("unknown op");
}

}  // namespace

bool valid_channel_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_identifier(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::optional<Rejection> check_shape(const api::Patch& p, const Limits& limits) {
  const std::size_t size = p.ByteSizeLong();
  if (size > limits.max_patch_bytes) {
    return Rejection{"too_large", "patch is " + std::to_string(size) + " bytes; the limit is " +
                                      std::to_string(limits.max_patch_bytes)};
  }
  if (!valid_id(p.id())) return invalid("id must be 1-128 characters with no control characters");
  if (p.client_id().size() > 128) return invalid("clientId must be at most 128 characters");
  if (p.has_base_version() && p.base_version() < 0) return invalid("baseVersion must be >= 0");
  if (p.has_peer() && (!valid_id(p.peer().site_id()) || p.peer().version() < 0)) {
    return invalid("peer needs a siteId (1-128 characters) and a version >= 0");
  }
  const std::optional<Op> op = parse_op(p.op());
  if (!op) return invalid("unknown op \"" + p.op().substr(0, 64) + "\"");

  ValueWalker walker(limits);
  if (auto why = walker.walk(p.data(), 1)) return invalid(*why);
  if (auto why = walker.walk(p.extra(), 1)) return invalid(*why);
  if (p.has_property_value()) {
    if (auto why = walker.walk(p.property_value(), 1)) return invalid(*why);
  }
  return check_op_fields(*op, p);
}

std::optional<std::string> presence_state_error(const google::protobuf::Struct& state) {
  constexpr std::size_t kMaxStateBytes = 1024;
  if (state.ByteSizeLong() > 4 * kMaxStateBytes) return "a presence state is at most 1 KiB of JSON";
  const Limits limits;
  if (auto why = ValueWalker(limits).walk(state, 1)) return "the presence state is not allowed: " + *why;
  const std::string json = to_json(state);
  if (json.size() > kMaxStateBytes) {
    return "a presence state is at most 1 KiB of JSON (this one is " + std::to_string(json.size()) + " bytes)";
  }
  // PostgreSQL's jsonb cannot hold a NUL character.
  if (json.find("\\u0000") != std::string::npos) return "a presence state may not contain NUL characters";
  return std::nullopt;
}

}  // namespace syncd::graph
