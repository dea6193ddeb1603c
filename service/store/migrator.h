#pragma once
// Applies and reverts the schema migrations in migrations/ (dbmate format).
//
// Bookkeeping is dbmate's: table schema_migrations(version varchar(128)
// primary key) holding the applied versions, each migration in its own
// transaction. So `syncd migrate` and dbmate can take turns on one database.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace syncd::store {

struct Migration {
  std::string version;  // the leading digits of the file name
  std::string name;     // the file name
  std::string up;
  std::string down;
};

// Splits a dbmate file at its "-- migrate:up" and "-- migrate:down" lines.
absl::StatusOr<Migration> parse_migration(std::string_view file_name, std::string_view text);

// Every migration compiled into this binary, oldest first.
absl::StatusOr<std::vector<Migration>> bundled_migrations();

struct MigrationStatus {
  std::string name;
  bool applied = false;
};

class Migrator {
 public:
  using Progress = std::function<void(const std::string& line)>;

  Migrator(std::string database_url, std::vector<Migration> migrations);

  // Applies every pending migration, oldest first. Returns how many ran.
  absl::StatusOr<int> up(const Progress& progress);
  // Reverts the newest applied migration. Returns how many ran (0 or 1).
  absl::StatusOr<int> down(const Progress& progress);
  absl::StatusOr<std::vector<MigrationStatus>> status();
  // The bundled migrations not yet applied (for `serve` to refuse to start).
  absl::StatusOr<std::vector<std::string>> pending();

 private:
  std::string url_;
  std::vector<Migration> migrations_;
};

}  // namespace syncd::store
