#include "graph/graph.h"

#include "graph/op.h"

namespace syncd::graph {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

const Value* field(const Struct& s, const char* name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? nullptr : &it->second;
}

std::string string_field(const Struct& s, const char* name) {
  const Value* v = field(s, name);
  return v != nullptr && v->kind_case() == Value::kStringValue ? v->string_value() : std::string();
}

const Struct* properties_of(const Struct& data) {
  const Value* v = field(data, "properties");
  return v != nullptr && v->kind_case() == Value::kStructValue ? &v->struct_value() : nullptr;
}

Rejection not_found(const char* kind, const std::string& id) {
  return {"not_found", std::string(kind) + " " + id + " does not exist"};
}

// Under reject_stale, a patch made at base version b may not touch what
// another client changed after b. Without a base version there is nothing
// to compare, so the patch is taken as current.
class StaleCheck {
 public:
  StaleCheck(const api::Patch& p, ConflictPolicy policy)
      : active_(policy == ConflictPolicy::kRejectStale && p.has_base_version()),
        base_(p.base_version()),
        client_(p.client_id()) {}

  bool stale(const Stamp& s) const { return active_ && s.version > base_ && s.client_id != client_; }

  bool stale_key(const Element& e, const std::string& key) const {
    auto it = e.stamps.find(key);
    return it != e.stamps.end() && stale(it->second);
  }

  Rejection conflict(const char* kind, const std::string& id, const std::string& what) const {
    return {"conflict", std::string(kind) + " " + id + what +
                            " was changed by another client after version " +
                            std::to_string(base_)};
  }

 private:
  bool active_;
  std::int64_t base_;
  const std::string& client_;
};

}  // namespace

std::optional<ConflictPolicy> parse_conflict_policy(std::string_view name) {
  if (name == "last_writer_wins") return ConflictPolicy::kLastWriterWins;
  if (name == "reject_stale") return ConflictPolicy::kRejectStale;
  return std::nullopt;
}

std::string_view conflict_policy_name(ConflictPolicy policy) {
  return policy == ConflictPolicy::kRejectStale ? "reject_stale" : "last_writer_wins";
}

const Element* Graph::node(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

const Element* Graph::edge(const std::string& id) const {
  auto it = edges_.find(id);
  return it == edges_.end() ? nullptr : &it->second;
}

void Graph::load_node(const std::string& id, Element e) { nodes_[id] = std::move(e); }

void Graph::load_edge(const std::string& id, Element e) {
  incident_[e.from].insert(id);
  incident_[e.to].insert(id);
  edges_[id] = std::move(e);
}

Graph::Dirty Graph::take_dirty() { return std::exchange(dirty_, Dirty{}); }

void Graph::erase_edge(const std::string& id) {
  auto it = edges_.find(id);
  if (it == edges_.end()) return;
  incident_[it->second.from].erase(id);
  incident_[it->second.to].erase(id);
  edges_.erase(it);
  dirty_.edges.insert(id);
}

std::optional<Rejection> Graph::apply(const api::Patch& p, std::int64_t version,
                                      ConflictPolicy policy) {
  const std::optional<Op> op = parse_op(p.op());
  if (!op) return Rejection{"invalid_patch", "unknown op \"" + p.op() + "\""};
  const StaleCheck check(p, policy);
  const Stamp stamp{version, p.client_id()};

  // Sets each of `props` on `e`, stamping the keys.
  auto merge = [&stamp](Element& e, const Struct* props) {
    if (props == nullptr) return;
    for (const auto& [key, value] : props->fields()) {
      (*e.properties.mutable_fields())[key] = value;
      e.stamps[key] = stamp;
    }
  };
  auto stale_props = [&check](const Element& e, const Struct* props) -> const std::string* {
    if (props == nullptr) return nullptr;
    for (const auto& [key, value] : props->fields()) {
      if (check.stale_key(e, key)) return &key;
    }
    return nullptr;
  };

  switch (*op) {
    case Op::kCreateNode: {
      if (nodes_.count(p.node_id())) {
        return Rejection{"conflict", "node " + p.node_id() + " already exists"};
      }
      Element e;
      e.label = string_field(p.data(), "label");
      e.stamp = stamp;
      merge(e, properties_of(p.data()));
      nodes_[p.node_id()] = std::move(e);
      dirty_.nodes.insert(p.node_id());
      return std::nullopt;
    }
    case Op::kCreateEdge: {
      if (edges_.count(p.edge_id())) {
        return Rejection{"conflict", "edge " + p.edge_id() + " already exists"};
      }
      Element e;
      e.label = string_field(p.data(), "label");
      e.from = string_field(p.data(), "fromNodeId");
      e.to = string_field(p.data(), "toNodeId");
      if (!nodes_.count(e.from)) return not_found("node", e.from);
      if (!nodes_.count(e.to)) return not_found("node", e.to);
      e.stamp = stamp;
      merge(e, properties_of(p.data()));
      load_edge(p.edge_id(), std::move(e));
      dirty_.edges.insert(p.edge_id());
      return std::nullopt;
    }
    case Op::kUpdateNode:
    case Op::kUpdateEdge: {
      const bool is_node = *op == Op::kUpdateNode;
      const std::string& id = is_node ? p.node_id() : p.edge_id();
      auto& map = is_node ? nodes_ : edges_;
      const char* kind = is_node ? "node" : "edge";
      auto it = map.find(id);
      if (it == map.end()) return not_found(kind, id);
      Element& e = it->second;
      const Struct* props = properties_of(p.data());
      const bool relabel = field(p.data(), "label") != nullptr;
      if (relabel && check.stale(e.stamp)) return check.conflict(kind, id, "");
      if (const std::string* key = stale_props(e, props)) {
        return check.conflict(kind, id, " property " + *key);
      }
      if (relabel) e.label = string_field(p.data(), "label");
      merge(e, props);
      e.stamp = stamp;
      (is_node ? dirty_.nodes : dirty_.edges).insert(id);
      return std::nullopt;
    }
    case Op::kDeleteNode: {
      auto it = nodes_.find(p.node_id());
      if (it == nodes_.end()) return not_found("node", p.node_id());
      if (check.stale(it->second.stamp)) return check.conflict("node", p.node_id(), "");
      nodes_.erase(it);
      dirty_.nodes.insert(p.node_id());
      // Deleting a node deletes its edges.
      const std::set<std::string> edges = std::move(incident_[p.node_id()]);
      incident_.erase(p.node_id());
      for (const std::string& edge_id : edges) erase_edge(edge_id);
      return std::nullopt;
    }
    case Op::kDeleteEdge: {
      auto it = edges_.find(p.edge_id());
      if (it == edges_.end()) return not_found("edge", p.edge_id());
      if (check.stale(it->second.stamp)) return check.conflict("edge", p.edge_id(), "");
      erase_edge(p.edge_id());
      return std::nullopt;
    }
    case Op::kSetProperty:
    case Op::kRemoveProperty: {
      const bool is_node = p.target_type() == "node";
      auto& map = is_node ? nodes_ : edges_;
      const char* kind = is_node ? "node" : "edge";
      auto it = map.find(p.target_id());
      if (it == map.end()) return not_found(kind, p.target_id());
      Element& e = it->second;
      if (check.stale_key(e, p.property_key())) {
        return check.conflict(kind, p.target_id(), " property " + p.property_key());
      }
      if (*op == Op::kSetProperty) {
        (*e.properties.mutable_fields())[p.property_key()] = p.property_value();
      } else {
        e.properties.mutable_fields()->erase(p.property_key());
      }
      e.stamps[p.property_key()] = stamp;
      e.stamp = stamp;
      (is_node ? dirty_.nodes : dirty_.edges).insert(p.target_id());
      return std::nullopt;
    }
    case Op::kOpaque:
      return std::nullopt;
  }
  return Rejection{"invalid_patch", "unknown op"};
}

}  // namespace syncd::graph
