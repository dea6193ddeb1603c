#pragma once
// The JS client, embedded at build time (bridge/embed_files.cmake):
// clients/js/sync-client.js at /sync-client.js and each of its modules,
// clients/js/sync-client/NAME.js, at /sync-client/NAME.js, where the
// entry's relative imports find them.

#include <cstddef>
#include <optional>
#include <string_view>

namespace bridge {

struct ServedFile {
  std::string_view path;  // the URL path, e.g. "/sync-client.js"
  std::string_view text;
};

extern const ServedFile kClientFiles[];
extern const std::size_t kClientFileCount;

// The file served at `path`, if any.
inline std::optional<std::string_view> client_file(std::string_view path) {
  for (std::size_t i = 0; i < kClientFileCount; ++i) {
    if (kClientFiles[i].path == path) return kClientFiles[i].text;
  }
  return std::nullopt;
}

}  // namespace bridge
