#pragma once
// The files the bridge serves, embedded at build time
// (bridge/embed_files.cmake): the demo page (bridge/http/demo.html) at /,
// the JS client (clients/js/sync-client.js) at /sync-client.js and each of
// its modules, clients/js/sync-client/NAME.js, at /sync-client/NAME.js,
// where the entry's relative imports find them.

#include <cstddef>
#include <string_view>

namespace bridge {

struct ServedFile {
  std::string_view path;  // the URL path, e.g. "/sync-client.js"
  std::string_view content_type;
  std::string_view text;
};

extern const ServedFile kServedFiles[];
extern const std::size_t kServedFileCount;

// The file served at `path`, or null.
inline const ServedFile* served_file(std::string_view path) {
  for (std::size_t i = 0; i < kServedFileCount; ++i) {
    if (kServedFiles[i].path == path) return &kServedFiles[i];
  }
  return nullptr;
}

}  // namespace bridge
