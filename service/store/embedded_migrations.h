#pragma once
// The text of migrations/*.sql, compiled into the binary by
// migrations/embed.cmake, in file-name (= version) order.

#include <string_view>
#include <vector>

namespace syncd::migrations {

struct EmbeddedFile {
  std::string_view name;  // "20261123000001_create_channels_and_log.sql"
  std::string_view text;
};

const std::vector<EmbeddedFile>& embedded_files();

}  // namespace syncd::migrations
