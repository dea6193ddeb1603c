#pragma once
// A channel's state as patches: the materialized nodes and edges read in one
// REPEATABLE READ transaction together with the head, so the snapshot is
// exactly the fold of versions 1..V (the state tables change in the same
// transaction as the head they belong to).

#include <libpq-fe.h>

#include <string>

#include "store/change_log.h"

namespace syncd::store {

// Prepares the statements below; once per connection. Throws pq::Error.
void prepare_snapshot_statements(PGconn* conn);

// Reads `channel`'s snapshot on `conn` (idle). Throws pq::Error; the
// connection is left idle when it returns.
Snapshot read_snapshot(PGconn* conn, const std::string& channel);

}  // namespace syncd::store
