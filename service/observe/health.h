#pragma once
// The body of GET /health on syncd and sync-bridge, in the shape the
// original relay answered: {"status":"ok","timestamp":"<ISO 8601>",
// "activeConnections":N}.

#include <string>
#include <string_view>

namespace syncd::observe {

std::string health_json(std::string_view status, long long active_connections);

}  // namespace syncd::observe
