#include "store/batch_footprint.h"

#include "graph/op.h"

namespace syncd::store {
namespace {

std::string str_field(const google::protobuf::Struct& s, const char* name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? std::string() : it->second.string_value();
}

}  // namespace

void Footprint::add(const api::Patch& p) {
  using graph::Op;
  switch (*graph::parse_op(p.op())) {
    case Op::kCreateNode:
    case Op::kUpdateNode:
      nodes.insert(p.node_id());
      break;
    case Op::kDeleteNode:
      nodes.insert(p.node_id());
      deleted_nodes.insert(p.node_id());
      break;
    case Op::kCreateEdge:
      edges.insert(p.edge_id());
      nodes.insert(str_field(p.data(), "fromNodeId"));
      nodes.insert(str_field(p.data(), "toNodeId"));
      break;
    case Op::kUpdateEdge:
    case Op::kDeleteEdge:
      edges.insert(p.edge_id());
      break;
    case Op::kSetProperty:
    case Op::kRemoveProperty:
      (p.target_type() == "node" ? nodes : edges).insert(p.target_id());
      break;
    case Op::kOpaque:
      break;
  }
}

}  // namespace syncd::store
