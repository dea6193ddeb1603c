#pragma once
// The committer's hot path: one batch of submissions, across channels,
// validated against the stored graph and written to PostgreSQL as prepared
// statements in two pipelined round trips (see pg_batch.cpp).

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "store/change_log.h"

namespace syncd::store {

// Channel name -> row id, for rows known to exist.
using ChannelIds = std::map<std::string, std::int64_t>;

// Sets up a connection for the statements below and the log reads: each
// is planned once (no plan depends on a parameter's value), and planned to
// find rows by index whatever the tables held when it was planned. Throws
// pq::Error.
void configure_session(PGconn* conn);

// Prepares the statements commit_batch uses; once per connection
// (configured above). Throws pq::Error.
void prepare_batch_statements(PGconn* conn);

// Commits `batch` on `conn` (prepared above, idle, not in a transaction),
// creating missing channel rows first and caching their ids in `ids`.
// Never throws; fails as ChangeLog::commit documents. After a failure the
// connection must be dropped and `ids` cleared.
absl::StatusOr<CommitResult> commit_batch(PGconn* conn, const std::vector<Submission>& batch, ChannelIds& ids,
                                          const std::string& instance);

}  // namespace syncd::store
