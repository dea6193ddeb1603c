#include "store/pg_change_log.h"

#include <endian.h>
#include <libpq-fe.h>

#include <cstring>

#include "store/pg_batch.h"
#include "store/pg_compaction.h"
#include "store/pg_snapshot.h"
#include "store/pq.h"

namespace syncd::store {

// One plain libpq connection, opened on first use (libpqxx 6 can neither
// read binary results nor pipeline, see pq.h). Log pages arrive in binary
// format: bodies as their bytes, not as hex text at twice the size. The
// batch statements are prepared only where batches are committed.
struct PgChangeLog::Connection {
  explicit Connection(const std::string& url) : pg(pq::connect(url)) {
    configure_session(pg.get());
    pq::prepare(pg.get(), "read_page",
                "SELECT c.head, p.version, p.body, p.patch_id, p.client_id, c.compacted_through FROM channels c "
                "LEFT JOIN LATERAL (SELECT version, body, patch_id, client_id FROM patches "
                "WHERE channel_id = c.id AND version > $2 AND version <= c.head ORDER BY version LIMIT $3) p "
                "ON true WHERE c.name = $1");
    pq::prepare(pg.get(), "channel_row",
                "SELECT head, conflict_policy, compacted_through, retain_versions, retain_seconds FROM channels "
                "WHERE name = $1");
    // $2-$4 NULL keep the current value ($2 also on insert: the default).
    pq::prepare(pg.get(), "configure_channel",
                "INSERT INTO channels (name, conflict_policy, retain_versions, retain_seconds) "
                "VALUES ($1, coalesce($2, 'last_writer_wins'), $3, $4) ON CONFLICT (name) DO UPDATE SET "
                "conflict_policy = coalesce($2, channels.conflict_policy), "
                "retain_versions = coalesce($3, channels.retain_versions), "
                "retain_seconds = coalesce($4, channels.retain_seconds) "
                "RETURNING head, conflict_policy, compacted_through, retain_versions, retain_seconds, id");
    prepare_snapshot_statements(pg.get());
    prepare_compaction_statements(pg.get());
  }
  PGconn* batches() {
    if (!batch_statements) {
      prepare_batch_statements(pg.get());
      batch_statements = true;
    }
    return pg.get();
  }
  // Broken, or left inside a transaction or a pipeline.
  bool broken() const {
    return PQstatus(pg.get()) != CONNECTION_OK || PQpipelineStatus(pg.get()) != PQ_PIPELINE_OFF ||
           PQtransactionStatus(pg.get()) != PQTRANS_IDLE;
  }

  pq::Conn pg;
  bool batch_statements = false;
};

PgChangeLog::PgChangeLog(std::string database_url, std::string instance)
    : url_(std::move(database_url)), instance_(std::move(instance)) {}
PgChangeLog::~PgChangeLog() = default;

PgChangeLog::Connection& PgChangeLog::conn() {
  if (!conn_ || conn_->broken()) conn_ = std::make_unique<Connection>(url_);
  return *conn_;
}

absl::StatusOr<CommitResult> PgChangeLog::commit(const std::vector<Submission>& batch) {
  PGconn* pg = nullptr;
  try {
    pg = conn().batches();
  } catch (const std::exception& e) {
    conn_.reset();
    return absl::UnavailableError(std::string("cannot reach the database: ") + e.what());
  }
  absl::StatusOr<CommitResult> result = commit_batch(pg, batch, channel_ids_, instance_);
  if (!result.ok()) {
    conn_.reset();          // it may hold an aborted or unfinished transaction
    channel_ids_.clear();   // a channel row may have been deleted under us
    // A channel was deleted since its id was cached: nothing was stored,
    // and with fresh ids the batch recreates it.
    if (absl::IsAborted(result.status())) return commit(batch);
  }
  return result;
}

template <typename Body>
absl::Status PgChangeLog::with_connection(const char* what, Body&& body) {
  for (int attempt = 1;; ++attempt) {
    // A connection is known to be broken only once it is used: one that
    // was open before a database restart fails its first statement. Reads
    // are idempotent, so that failure is retried once on a new connection.
    const bool fresh = !conn_ || conn_->broken();
    try {
      body(conn());
      return absl::OkStatus();
    } catch (const std::exception& e) {
      conn_.reset();
      if (fresh || attempt == 2) return absl::UnavailableError(std::string(what) + ": " + e.what());
    }
  }
}

absl::StatusOr<Page> PgChangeLog::read(const std::string& channel, std::int64_t after,
                                       std::size_t limit, std::size_t max_bytes) {
  Page page;
  const absl::Status st = with_connection("could not read the log", [&](Connection& c) {
    page = Page{};
    // One round trip reads the head and the page after `after`, capped at
    // that head: versions are immutable once committed, so a page needs no
    // snapshot, and has_more stays true to what was read. No row means no
    // channel; a row with no version, no patch after `after`.
    const std::string from = std::to_string(after);
    const std::string count = std::to_string(limit);
    const pq::Result rows = pq::exec_prepared(c.pg.get(), "read_page", {&channel, &from, &count}, /*binary=*/true);
    auto int8 = [&](int row, int col) {
      std::uint64_t be;  // int8 in binary format: 8 bytes, network order
      std::memcpy(&be, PQgetvalue(rows.get(), row, col), sizeof be);
      return static_cast<std::int64_t>(be64toh(be));
    };
    const int n = PQntuples(rows.get());
    if (n == 0) return;
    page.head = int8(0, 0);
    page.compacted_through = int8(0, 5);
    if (page.compacted(after)) return;  // the rows after `after` are not consecutive
    page.patches.reserve(static_cast<std::size_t>(n));
    std::size_t bytes = 0;
    for (int i = 0; i < n && !PQgetisnull(rows.get(), i, 1); ++i) {
      StoredPatch& p = page.patches.emplace_back();
      p.version = int8(i, 1);
      p.body.assign(PQgetvalue(rows.get(), i, 2), static_cast<std::size_t>(PQgetlength(rows.get(), i, 2)));
      p.id.assign(PQgetvalue(rows.get(), i, 3), static_cast<std::size_t>(PQgetlength(rows.get(), i, 3)));
      p.client_id.assign(PQgetvalue(rows.get(), i, 4), static_cast<std::size_t>(PQgetlength(rows.get(), i, 4)));
      bytes += p.body.size();
      if (bytes >= max_bytes) break;
    }
    const std::int64_t last = page.patches.empty() ? after : page.patches.back().version;
    page.has_more = last < page.head;
  });
  if (!st.ok()) return st;
  return page;
}

namespace {

// Columns 0-4 of channel_row and configure_channel.
void read_settings(const PGresult* r, ChannelState& state) {
  state.head = pq::int64(r, 0, 0);
  state.conflict_policy = pq::text(r, 0, 1);
  state.compacted_through = pq::int64(r, 0, 2);
  if (!PQgetisnull(r, 0, 3)) state.retain_versions = pq::int64(r, 0, 3);
  if (!PQgetisnull(r, 0, 4)) state.retain_seconds = pq::int64(r, 0, 4);
}

}  // namespace

absl::StatusOr<ChannelState> PgChangeLog::channel_state(const std::string& channel) {
  ChannelState state{channel, 0, "last_writer_wins", ""};
  const absl::Status st = with_connection("could not read the channel", [&](Connection& c) {
    if (server_id_.empty()) {
      server_id_ = pq::text(pq::exec(c.pg.get(), "SELECT site_id FROM server_identity").get(), 0, 0);
    }
    state.server_id = server_id_;
    const pq::Result ch = pq::exec_prepared(c.pg.get(), "channel_row", {&channel});
    if (PQntuples(ch.get()) > 0) read_settings(ch.get(), state);
  });
  if (!st.ok()) return st;
  return state;
}

absl::StatusOr<ChannelState> PgChangeLog::configure(const std::string& channel,
                                                    const ChannelSettings& settings) {
  ChannelState state{channel, 0, "", server_id_};
  // An upsert to fixed values: running it twice is the same as once.
  const absl::Status st = with_connection("could not configure the channel", [&](Connection& c) {
    const auto text = [](const std::optional<std::int64_t>& v) {
      return v ? std::optional<std::string>(std::to_string(*v)) : std::nullopt;
    };
    const std::optional<std::string> versions = text(settings.retain_versions);
    const std::optional<std::string> seconds = text(settings.retain_seconds);
    const pq::Result r = pq::exec_prepared(c.pg.get(), "configure_channel",
                                           {&channel, settings.conflict_policy ? &*settings.conflict_policy : nullptr,
                                            versions ? &*versions : nullptr, seconds ? &*seconds : nullptr});
    channel_ids_[channel] = pq::int64(r.get(), 0, 5);
    read_settings(r.get(), state);
  });
  if (!st.ok()) return st;
  return state;
}

absl::StatusOr<Snapshot> PgChangeLog::snapshot(const std::string& channel) {
  Snapshot snap;
  const absl::Status st = with_connection("could not read the snapshot",
                                          [&](Connection& c) { snap = read_snapshot(c.pg.get(), channel); });
  if (!st.ok()) return st;
  return snap;
}

absl::StatusOr<CompactResult> PgChangeLog::compact(const CompactRequest& request, bool wait) {
  // Not retried: a batch already committed stays committed, and the caller
  // may simply compact again.
  try {
    return compact_channel(conn().pg.get(), request, wait);
  } catch (const std::exception& e) {
    conn_.reset();  // it may hold a transaction or the advisory lock
    return absl::UnavailableError(std::string("could not compact: ") + e.what());
  }
}

absl::StatusOr<std::vector<std::pair<std::string, std::int64_t>>> PgChangeLog::retention_due(
    const Retention& defaults) {
  std::vector<std::pair<std::string, std::int64_t>> due;
  const absl::Status st = with_connection("could not read retention",
                                          [&](Connection& c) { due = channels_due(c.pg.get(), defaults); });
  if (!st.ok()) return st;
  return due;
}

absl::StatusOr<std::int64_t> PgChangeLog::expire_ids(std::int64_t seconds, std::size_t limit) {
  std::int64_t n = 0;
  const absl::Status st = with_connection("could not expire compacted ids", [&](Connection& c) {
    n = expire_compacted_ids(c.pg.get(), seconds, limit);
  });
  if (!st.ok()) return st;
  return n;
}

absl::StatusOr<std::optional<std::int64_t>> PgChangeLog::delete_channel(const std::string& channel) {
  try {
    auto head = delete_channel_row(conn().pg.get(), channel);
    channel_ids_.erase(channel);
    return head;
  } catch (const std::exception& e) {
    conn_.reset();
    // Not retried: the outcome is unknown if the connection broke at COMMIT.
    return absl::UnavailableError(std::string("could not delete the channel: ") + e.what());
  }
}

}  // namespace syncd::store
