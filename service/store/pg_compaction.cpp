#include "store/pg_compaction.h"

#include <chrono>
#include <thread>

#include "store/pq.h"

namespace syncd::store {
namespace {

// Advisory lock space for "compacting channel <id>" (any value works; this
// one spells "cmpt"). Ids past 2^31 share keys, which only serializes more.
constexpr const char* kTryLock = "SELECT pg_try_advisory_lock(1668116596, ($1::bigint % 2147483647)::int)";
constexpr const char* kLock = "SELECT pg_advisory_lock(1668116596, ($1::bigint % 2147483647)::int)";
constexpr const char* kUnlock = "SELECT pg_advisory_unlock(1668116596, ($1::bigint % 2147483647)::int)";

std::string str(std::int64_t v) { return std::to_string(v); }

}  // namespace

void prepare_compaction_statements(PGconn* conn) {
  pq::prepare(conn, "compact_channel", "SELECT id, head, compacted_through FROM channels WHERE name = $1");
  pq::prepare(conn, "compact_try_lock", kTryLock);
  pq::prepare(conn, "compact_lock", kLock);
  pq::prepare(conn, "compact_unlock", kUnlock);
  pq::prepare(conn, "compact_opaque",
              "SELECT version FROM patches WHERE channel_id = $1 AND op = 'opaque' AND version > $2 "
              "AND version <= $3 ORDER BY version LIMIT 1");
  // Moves one batch: the rows leave the log, the ids of young ones stay.
  pq::prepare(conn, "compact_move",
              "WITH moved AS (DELETE FROM patches WHERE channel_id = $1 AND version > $2 AND version <= $3 "
              "RETURNING patch_id, version, committed_at) "
              "INSERT INTO compacted_ids (channel_id, patch_id, version, committed_at) "
              "SELECT $1, patch_id, version, committed_at FROM moved "
              "WHERE committed_at > now() - make_interval(secs => $4::bigint) ON CONFLICT DO NOTHING");
  pq::prepare(conn, "compact_horizon",
              "UPDATE channels SET compacted_through = $2 WHERE id = $1 AND compacted_through < $2");
  // Candidates: channels with more log than their retention keeps.
  pq::prepare(conn, "retention_candidates",
              "SELECT id, name, head, compacted_through, coalesce(retain_versions, $1), "
              "coalesce(retain_seconds, $2) FROM channels WHERE head > compacted_through AND "
              "(coalesce(retain_seconds, $2) > 0 OR "
              "(coalesce(retain_versions, $1) > 0 AND head - compacted_through > coalesce(retain_versions, $1)))");
  // The oldest version still younger than the age limit: scans only rows
  // that are about to go (versions are committed in order).
  pq::prepare(conn, "retention_young",
              "SELECT version FROM patches WHERE channel_id = $1 AND version > $2 AND "
              "committed_at >= now() - make_interval(secs => $3::bigint) ORDER BY version LIMIT 1");
  pq::prepare(conn, "expire_ids",
              "DELETE FROM compacted_ids WHERE ctid = ANY (ARRAY (SELECT ctid FROM compacted_ids "
              "WHERE committed_at < now() - make_interval(secs => $1::bigint) LIMIT $2))");
  pq::prepare(conn, "delete_channel",
              "WITH positions AS (DELETE FROM client_positions WHERE channel = $1) "
              "DELETE FROM channels WHERE name = $1 RETURNING head");
  pq::prepare(conn, "announce_deleted",
              (std::string("SELECT pg_notify('") + kDeletedNotifyChannel + "', $1)").c_str());
}

absl::StatusOr<CompactResult> compact_channel(PGconn* conn, const CompactRequest& request, bool wait) {
  const pq::Result row = pq::exec_prepared(conn, "compact_channel", {&request.channel});
  if (PQntuples(row.get()) == 0) return absl::NotFoundError("no channel named " + request.channel);
  const std::string id(pq::text(row.get(), 0, 0));
  CompactResult result{pq::int64(row.get(), 0, 2), pq::int64(row.get(), 0, 1), pq::int64(row.get(), 0, 2)};
  if (request.through > result.head) {
    return absl::OutOfRangeError("through_version " + str(request.through) + " is past the head (" +
                                 str(result.head) + ")");
  }
  if (request.through <= result.compacted_through) return result;

  if (wait) {
    pq::exec_prepared(conn, "compact_lock", {&id});
  } else {
    const pq::Result got = pq::exec_prepared(conn, "compact_try_lock", {&id});
    if (pq::text(got.get(), 0, 0) != "t") return absl::AbortedError("another instance is compacting " + request.channel);
  }
  // Under the lock, the horizon can only have moved by another compactor
  // that finished first.
  const pq::Result again = pq::exec_prepared(conn, "compact_channel", {&request.channel});
  if (PQntuples(again.get()) == 0) {
    pq::exec_prepared(conn, "compact_unlock", {&id});
    return absl::NotFoundError("channel " + request.channel + " was deleted");
  }
  result.compacted_through = result.previous = pq::int64(again.get(), 0, 2);
  if (!request.force) {
    const std::string from = str(result.compacted_through), through = str(request.through);
    const pq::Result opaque = pq::exec_prepared(conn, "compact_opaque", {&id, &from, &through});
    if (PQntuples(opaque.get()) > 0) {
      pq::exec_prepared(conn, "compact_unlock", {&id});
      return absl::FailedPreconditionError(
          "channel " + request.channel + " holds opaque (CRDT) patches up to version " + str(request.through) +
          " (the first at " + std::string(pq::text(opaque.get(), 0, 0)) +
          "), which no snapshot can rebuild; compact with force to drop them anyway");
    }
  }
  const std::string dedup = str(request.dedup_seconds);
  while (result.compacted_through < request.through && !(request.cancel && *request.cancel)) {
    const std::int64_t upto =
        std::min<std::int64_t>(request.through, result.compacted_through + static_cast<std::int64_t>(request.batch_rows));
    const std::string from = str(result.compacted_through), to = str(upto);
    const auto started = std::chrono::steady_clock::now();
    pq::exec(conn, "BEGIN");
    pq::exec_prepared(conn, "compact_move", {&id, &from, &to, &dedup});
    pq::exec_prepared(conn, "compact_horizon", {&id, &to});
    pq::exec(conn, "COMMIT");
    result.compacted_through = upto;
    if (request.paced && upto < request.through) {
      const auto until = std::chrono::steady_clock::now() + (std::chrono::steady_clock::now() - started);
      while (std::chrono::steady_clock::now() < until && !(request.cancel && *request.cancel)) {
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            until - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
      }
    }
  }
  pq::exec_prepared(conn, "compact_unlock", {&id});
  return result;
}

std::vector<std::pair<std::string, std::int64_t>> channels_due(PGconn* conn, const Retention& defaults) {
  std::vector<std::pair<std::string, std::int64_t>> due;
  const std::string versions = str(defaults.versions), seconds = str(defaults.seconds);
  const pq::Result rows = pq::exec_prepared(conn, "retention_candidates", {&versions, &seconds});
  for (int i = 0; i < PQntuples(rows.get()); ++i) {
    const std::string id(pq::text(rows.get(), i, 0));
    const std::int64_t head = pq::int64(rows.get(), i, 2);
    const std::int64_t horizon = pq::int64(rows.get(), i, 3);
    const std::int64_t keep_versions = pq::int64(rows.get(), i, 4);
    const std::int64_t keep_seconds = pq::int64(rows.get(), i, 5);
    if (keep_versions == 0 && keep_seconds == 0) continue;
    // A patch goes only when every rule that is on lets it go.
    std::int64_t through = keep_versions > 0 ? head - keep_versions : head;
    if (keep_seconds > 0) {
      const std::string from = str(horizon), age = str(keep_seconds);
      const pq::Result young = pq::exec_prepared(conn, "retention_young", {&id, &from, &age});
      if (PQntuples(young.get()) > 0) through = std::min(through, pq::int64(young.get(), 0, 0) - 1);
    }
    if (through > horizon) due.emplace_back(std::string(pq::text(rows.get(), i, 1)), through);
  }
  return due;
}

std::int64_t expire_compacted_ids(PGconn* conn, std::int64_t seconds, std::size_t limit) {
  const std::string age = str(seconds), count = std::to_string(limit);
  const pq::Result r = pq::exec_prepared(conn, "expire_ids", {&age, &count});
  const char* n = PQcmdTuples(r.get());
  return n && *n ? std::stoll(n) : 0;
}

std::optional<std::int64_t> delete_channel_row(PGconn* conn, const std::string& channel) {
  pq::exec(conn, "BEGIN");
  const pq::Result r = pq::exec_prepared(conn, "delete_channel", {&channel});
  if (PQntuples(r.get()) == 0) {
    pq::exec(conn, "COMMIT");
    return std::nullopt;
  }
  const std::int64_t head = pq::int64(r.get(), 0, 0);
  pq::exec_prepared(conn, "announce_deleted", {&channel});  // delivered on commit
  pq::exec(conn, "COMMIT");
  return head;
}

}  // namespace syncd::store
