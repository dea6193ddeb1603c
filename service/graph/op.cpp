#include "graph/op.h"

#include <array>
#include <utility>

namespace syncd::graph {
namespace {

struct Spelling {
  std::string_view snake;
  std::string_view camel;
  Op op;
};

constexpr std::array<Spelling, 9> kSpellings{{
    {"create_node", "createNode", Op::kCreateNode},
    {"update_node", "updateNode", Op::kUpdateNode},
    {"delete_node", "deleteNode", Op::kDeleteNode},
    {"create_edge", "createEdge", Op::kCreateEdge},
    {"update_edge", "updateEdge", Op::kUpdateEdge},
    {"delete_edge", "deleteEdge", Op::kDeleteEdge},
    {"set_property", "setProperty", Op::kSetProperty},
    {"remove_property", "removeProperty", Op::kRemoveProperty},
    {"opaque", "opaque", Op::kOpaque},
}};

}  // namespace

std::optional<Op> parse_op(std::string_view name) {
  for (const Spelling& s : kSpellings) {
    if (name == s.snake || name == s.camel) return s.op;
  }
  return std::nullopt;
}

std::string_view op_name(Op op) {
  for (const Spelling& s : kSpellings) {
    if (s.op == op) return s.snake;
  }
  return "unknown";
}

}  // namespace syncd::graph
