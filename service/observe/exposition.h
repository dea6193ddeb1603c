#pragma once
// The text exposition of a prometheus-cpp registry, for a process that
// serves /metrics on its own HTTP port (prometheus-cpp's pull Exposer
// would open a second one).

#include <prometheus/registry.h>

#include <string>

namespace syncd::observe {

// Content-Type of the text format.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string exposition(const prometheus::Registry& registry);

}  // namespace syncd::observe
