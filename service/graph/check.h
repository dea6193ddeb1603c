#pragma once
// Checks of a patch's shape that need no state: names, sizes, required
// fields, nesting. They run on the session's thread before a patch is queued
// for commit, so a malformed patch never reaches the database.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "graph/rejection.h"

#include "api/messages.h"

namespace syncd::graph {

struct Limits {
  std::size_t max_patch_bytes = 64 * 1024;  // encoded size of the Patch
  int max_data_depth = 16;  // nesting of objects and arrays (below protobuf's decoder limit)
  std::size_t max_data_values = 10'000;     // values in data / propertyValue
};

// 1-128 characters of [A-Za-z0-9._:-].
bool valid_channel_name(std::string_view name);

// Labels and property keys: [A-Za-z_][A-Za-z0-9_]{0,63}.
bool valid_identifier(std::string_view name);

// Patch, node and edge ids: 1-128 bytes, no control characters.
bool valid_id(std::string_view id);

// nullopt when the patch is well formed.
std::optional<Rejection> check_shape(const api::Patch& patch, const Limits& limits);

// Why `state` cannot be a connection's presence state (a JSON object of at
// most 1 KiB as protobuf's JSON writes it, storable as jsonb), or nullopt
// when it can. syncd and sync-bridge measure it the same way.
std::optional<std::string> presence_state_error(const google::protobuf::Struct& state);

}  // namespace syncd::graph
