#pragma once
// How syncd and sync-bridge write their logs: `text` (the default, for a
// person at a terminal) or `json` (one object per line for log shippers:
// {"time":"2026-12-02T08:00:00.123Z","level":"info","msg":"..."}).

#include <string>

namespace syncd::observe {

// Applies `format` to spdlog's default logger. False (and `error` set)
// when the format is neither "text" nor "json".
bool set_log_format(const std::string& format, std::string* error);

}  // namespace syncd::observe
