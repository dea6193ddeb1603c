#include "store/migrator.h"

#include <pqxx/pqxx>
#include <set>

#include "store/embedded_migrations.h"

namespace syncd::store {
namespace {

constexpr const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar PRIMARY KEY)";
// One migrator at a time per database (any value works; this one spells "syncd").
// Older releases created the column as varchar(128); dbmate creates plain
// varchar. Widening it (no rewrite) makes both tools leave the same schema.
constexpr const char* kWidenVersion =
    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = 'schema_migrations' AND column_name = 'version' AND character_maximum_length IS NOT NULL) "
    "THEN ALTER TABLE schema_migrations ALTER COLUMN version TYPE varchar; END IF; END $$";
constexpr const char* kLock = "SELECT pg_advisory_xact_lock(7955267444)";

std::set<std::string> applied_versions(pqxx::transaction_base& tx) {
  std::set<std::string> out;
  for (const pqxx::row& r : tx.exec("SELECT version FROM schema_migrations")) {
    out.insert(r[0].c_str());
  }
  return out;
}

// A dbmate marker line: "-- migrate:up" or "-- migrate:down", options after.
bool is_marker(std::string_view line, std::string_view which) {
  const std::string_view prefix = "-- migrate:";
  if (line.substr(0, prefix.size()) != prefix) return false;
  line.remove_prefix(prefix.size());
  return line.substr(0, which.size()) == which &&
         (line.size() == which.size() || line[which.size()] == ' ' || line[which.size()] == '\r');
}

}  // namespace

absl::StatusOr<Migration> parse_migration(std::string_view file_name, std::string_view text) {
  Migration m;
  m.name = std::string(file_name);
  std::size_t digits = 0;
  while (digits < file_name.size() && std::isdigit(static_cast<unsigned char>(file_name[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits >= file_name.size() || file_name[digits] != '_') {
    return absl::InvalidArgumentError(m.name + ": name must be VERSION_name.sql");
  }
  m.version = std::string(file_name.substr(0, digits));
  std::string* section = nullptr;
  bool saw_up = false;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    if (is_marker(line, "up")) {
      section = &m.up;
      saw_up = true;
    } else if (is_marker(line, "down")) {
      section = &m.down;
    } else if (section != nullptr) {
      section->append(line).append("\n");
    }
    pos = end + 1;
  }
  if (!saw_up) return absl::InvalidArgumentError(m.name + ": no \"-- migrate:up\" line");
  return m;
}

absl::StatusOr<std::vector<Migration>> bundled_migrations() {
  std::vector<Migration> out;
  for (const auto& file : migrations::embedded_files()) {
    auto m = parse_migration(file.name, file.text);
    if (!m.ok()) return m.status();
    out.push_back(*std::move(m));
  }
  return out;
}

Migrator::Migrator(std::string database_url, std::vector<Migration> migrations)
    : url_(std::move(database_url)), migrations_(std::move(migrations)) {}

absl::StatusOr<int> Migrator::up(const Progress& progress) {
  int ran = 0;
  try {
    pqxx::connection conn(url_);
    for (const Migration& m : migrations_) {
      pqxx::work tx(conn);
      tx.exec(kLock);
      tx.exec(kCreateTable);
      tx.exec(kWidenVersion);
      if (applied_versions(tx).count(m.version)) continue;
      progress("applying " + m.name);
      tx.exec(m.up);
      tx.exec("INSERT INTO schema_migrations (version) VALUES (" + tx.quote(m.version) + ")");
      tx.commit();
      ++ran;
    }
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
  return ran;
}

absl::StatusOr<int> Migrator::down(const Progress& progress) {
  try {
    pqxx::connection conn(url_);
    pqxx::work tx(conn);
    tx.exec(kLock);
    tx.exec(kCreateTable);
    const std::set<std::string> applied = applied_versions(tx);
    for (auto it = migrations_.rbegin(); it != migrations_.rend(); ++it) {
      if (!applied.count(it->version)) continue;
      progress("reverting " + it->name);
      tx.exec(it->down);
      tx.exec("DELETE FROM schema_migrations WHERE version = " + tx.quote(it->version));
      tx.commit();
      return 1;
    }
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
  return 0;
}

absl::StatusOr<std::vector<MigrationStatus>> Migrator::status() {
  std::vector<MigrationStatus> out;
  try {
    pqxx::connection conn(url_);
    pqxx::work tx(conn);
    tx.exec(kCreateTable);
    const std::set<std::string> applied = applied_versions(tx);
    tx.commit();
    for (const Migration& m : migrations_) out.push_back({m.name, applied.count(m.version) > 0});
  } catch (const std::exception& e) {
    return absl::UnavailableError(e.what());
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> Migrator::pending() {
  auto all = status();
  if (!all.ok()) return all.status();
  std::vector<std::string> out;
  for (const MigrationStatus& s : *all) {
    if (!s.applied) out.push_back(s.name);
  }
  return out;
}

}  // namespace syncd::store
