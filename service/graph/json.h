#pragma once
// JSON text for the values a graph holds, as PostgreSQL's jsonb stores them.
// Numbers are doubles (google.protobuf.Value), so integers are exact up to
// 2^53; strings are UTF-8 and round-trip unchanged.

#include <map>
#include <optional>
#include <string>

#include "api/messages.h"
#include "graph/graph.h"

namespace syncd::graph {

std::string to_json(const google::protobuf::Struct& s);
std::optional<google::protobuf::Struct> struct_from_json(const std::string& json);

// Per-property stamps as {"key": [version, "client"]}.
std::string stamps_to_json(const std::map<std::string, Stamp>& stamps);
std::map<std::string, Stamp> stamps_from_json(const std::string& json);

}  // namespace syncd::graph
