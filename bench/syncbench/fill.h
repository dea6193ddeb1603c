#pragma once
// Writes a channel's log straight into syncd's database, for benchmarks
// that need history without the time it takes to push it.

#include <cstdint>
#include <string>

namespace syncbench {

// Creates `channel` holding versions 1..n, written in one statement (each
// body is the same realistic create_node patch; the log is what readers
// read). Returns the channel's id. Throws when the channel exists.
std::int64_t fill(const std::string& url, const std::string& channel, std::int64_t n);

}  // namespace syncbench
