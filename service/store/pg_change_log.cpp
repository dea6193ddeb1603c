#include "store/pg_change_log.h"

#include <endian.h>
#include <libpq-fe.h>

#include <cstring>
#include <pqxx/pqxx>

#include "store/pg_batch.h"
#include "store/pq.h"

namespace syncd::store {

// Two connections, each opened on first use: libpqxx for the occasional
// statements, and plain libpq for the hot paths, which libpqxx 6 cannot
// serve (see pq.h): log pages read in binary format (bodies arrive as their
// bytes, not as hex text at twice the size), and batches committed as
// pipelined prepared statements. A committer never opens the first; a log
// reader never prepares the batch statements.
struct PgChangeLog::Connection {
  explicit Connection(std::string url) : url(std::move(url)) {}

  pqxx::connection& pqxx() {
    if (!pq) {
      pq = std::make_unique<pqxx::connection>(url);
      pq->prepare("channel_row", "SELECT id, head, conflict_policy FROM channels WHERE name = $1");
    }
    return *pq;
  }
  PGconn* pages() {
    if (!raw) {
      raw = pq::connect(url);
      // Every statement on this connection is planned once: each plan
      // depends on no parameter's value enough to be worth planning again.
      pq::exec(raw.get(), "SET plan_cache_mode = force_generic_plan");
      pq::prepare(raw.get(), "read_page",
                  "SELECT c.head, p.version, p.body, p.patch_id, p.client_id FROM channels c "
                  "LEFT JOIN LATERAL (SELECT version, body, patch_id, client_id FROM patches "
                  "WHERE channel_id = c.id AND version > $2 AND version <= c.head ORDER BY version LIMIT $3) p "
                  "ON true WHERE c.name = $1");
    }
    return raw.get();
  }
  PGconn* batches() {
    PGconn* c = pages();
    if (!batch_statements) {
      prepare_batch_statements(c);
      batch_statements = true;
    }
    return c;
  }
  // A connection broke, or was left inside a transaction or a pipeline.
  bool broken() const {
    if (pq && !pq->is_open()) return true;
    return raw && (PQstatus(raw.get()) != CONNECTION_OK || PQpipelineStatus(raw.get()) != PQ_PIPELINE_OFF ||
                   PQtransactionStatus(raw.get()) != PQTRANS_IDLE);
  }

  std::string url;
  std::unique_ptr<pqxx::connection> pq;
  pq::Conn raw;
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
  }
  return result;
}

absl::StatusOr<Page> PgChangeLog::read(const std::string& channel, std::int64_t after,
                                       std::size_t limit, std::size_t max_bytes) {
  Page page;
  try {
    // One round trip reads the head and the page after `after`, capped at
    // that head: versions are immutable once committed, so a page needs no
    // snapshot, and has_more stays true to what was read. No row means no
    // channel; a row with no version, no patch after `after`.
    const std::string args[] = {channel, std::to_string(after), std::to_string(limit)};
    const char* values[] = {args[0].c_str(), args[1].c_str(), args[2].c_str()};
    const pq::Result rows(PQexecPrepared(conn().pages(), "read_page", 3, values, nullptr, nullptr, /*binary=*/1));
    if (PQresultStatus(rows.get()) != PGRES_TUPLES_OK) throw pq::Error(PQerrorMessage(conn().pages()), "");
    auto int8 = [&](int row, int col) {
      std::uint64_t be;  // int8 in binary format: 8 bytes, network order
      std::memcpy(&be, PQgetvalue(rows.get(), row, col), sizeof be);
      return static_cast<std::int64_t>(be64toh(be));
    };
    const int n = PQntuples(rows.get());
    if (n == 0) return page;
    page.head = int8(0, 0);
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
  } catch (const pqxx::broken_connection& e) {
    conn_.reset();
    return absl::UnavailableError(std::string("database connection lost: ") + e.what());
  } catch (const std::exception& e) {
    conn_.reset();
    return absl::UnavailableError(e.what());
  }
  return page;
}

absl::StatusOr<ChannelState> PgChangeLog::channel_state(const std::string& channel) {
  ChannelState state{channel, 0, "last_writer_wins", ""};
  try {
    pqxx::nontransaction tx(conn().pqxx());
    if (server_id_.empty()) server_id_ = tx.exec1("SELECT site_id FROM server_identity")[0].c_str();
    state.server_id = server_id_;
    const pqxx::result ch = tx.exec_prepared("channel_row", channel);
    if (!ch.empty()) {
      state.head = ch[0][1].as<std::int64_t>();
      state.conflict_policy = ch[0][2].c_str();
    }
  } catch (const std::exception& e) {
    conn_.reset();
    return absl::UnavailableError(e.what());
  }
  return state;
}

absl::StatusOr<ChannelState> PgChangeLog::configure(const std::string& channel,
                                                    const std::string& conflict_policy) {
  try {
    pqxx::work tx(conn().pqxx());
    const pqxx::row r = tx.exec1(
        "INSERT INTO channels (name, conflict_policy) VALUES (" + tx.quote(channel) + ", " +
        tx.quote(conflict_policy) +
        ") ON CONFLICT (name) DO UPDATE SET conflict_policy = EXCLUDED.conflict_policy "
        "RETURNING head, conflict_policy, id");
    tx.commit();
    channel_ids_[channel] = r[2].as<std::int64_t>();
    return ChannelState{channel, r[0].as<std::int64_t>(), r[1].c_str(), server_id_};
  } catch (const std::exception& e) {
    conn_.reset();
    return absl::UnavailableError(e.what());
  }
}

}  // namespace syncd::store
