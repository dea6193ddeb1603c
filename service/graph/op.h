#pragma once
// The operations a patch can carry, and their spellings on the wire.

#include <optional>
#include <string_view>

namespace syncd::graph {

enum class Op {
  kCreateNode,
  kUpdateNode,
  kDeleteNode,
  kCreateEdge,
  kUpdateEdge,
  kDeleteEdge,
  kSetProperty,
  kRemoveProperty,
  kOpaque,
};

// Accepts the snake_case names of PROTOCOL.md and the camelCase spellings
// some original clients send ("createNode"); nullopt for anything else.
std::optional<Op> parse_op(std::string_view name);

// The canonical snake_case name.
std::string_view op_name(Op op);

}  // namespace syncd::graph
