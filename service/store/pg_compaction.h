#pragma once
// Compaction, retention and deletion on PostgreSQL (see ChangeLog::compact,
// retention_due, expire_ids and delete_channel for the contracts).
//
// Why commits never wait long behind a compaction: each transaction moves
// at most `batch_rows` log rows, it touches the channel row (the lock
// commits take) only in its last statement, right before COMMIT, and a
// paced compaction rests as long as each transaction took. Why
// exactly-once holds across it: a transaction moves ids from `patches` to
// `compacted_ids` atomically, and a commit looks a patch id up in both in
// one statement, so it finds the id in exactly one of them.

#include <libpq-fe.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "store/change_log.h"

namespace syncd::store {

// Prepares the statements below; once per connection. Throws pq::Error.
void prepare_compaction_statements(PGconn* conn);

// These throw pq::Error for database failures; the caller drops the
// connection then (it may hold a transaction or the advisory lock).
absl::StatusOr<CompactResult> compact_channel(PGconn* conn, const CompactRequest& request, bool wait);
std::vector<std::pair<std::string, std::int64_t>> channels_due(PGconn* conn, const Retention& defaults);
std::int64_t expire_compacted_ids(PGconn* conn, std::int64_t seconds, std::size_t limit);
std::optional<std::int64_t> delete_channel_row(PGconn* conn, const std::string& channel);

// The LISTEN/NOTIFY channel on which a deletion announces the channel's name.
inline constexpr const char* kDeletedNotifyChannel = "syncd_deleted";

}  // namespace syncd::store
