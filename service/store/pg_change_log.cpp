#include "store/pg_change_log.h"

#include <endian.h>
#include <libpq-fe.h>

#include <cstring>

#include <map>
#include <pqxx/pqxx>
#include <unordered_map>
#include <unordered_set>

#include "graph/graph.h"
#include "graph/json.h"
#include "graph/op.h"

namespace syncd::store {
namespace {

using graph::Element;
using graph::Graph;
using graph::Op;

// "(a, b, c)" with each item quoted by the transaction.
template <typename Container>
std::string quoted_list(pqxx::transaction_base& tx, const Container& items) {
  std::string out = "(";
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += ',';
    out += tx.quote(item);
    first = false;
  }
  out += ')';
  return out;
}

api::Ack make_ack(const api::Patch& p, api::Ack::Status status, std::int64_t version) {
  api::Ack ack;
  ack.set_patch_id(p.id());
  ack.set_status(status);
  ack.set_server_version(version);
  return ack;
}

std::string str_field(const google::protobuf::Struct& s, const char* name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? std::string() : it->second.string_value();
}

// The node and edge ids a channel's patches may read, so that one query
// per table loads everything the batch needs.
struct Footprint {
  std::set<std::string> nodes;
  std::set<std::string> edges;
  std::set<std::string> deleted_nodes;  // their incident edges are needed too

  void add(const api::Patch& p) {
    switch (*graph::parse_op(p.op())) {
      case Op::kCreateNode:
      case Op::kUpdateNode:
        nodes.insert(p.node_id());
        break;
      case Op::kDeleteNode:
        nodes.insert(p.node_id());
        deleted_nodes.insert(p.node_id());
        break;
      case Op::kCreateEdge:
        edges.insert(p.edge_id());
        nodes.insert(str_field(p.data(), "fromNodeId"));
        nodes.insert(str_field(p.data(), "toNodeId"));
        break;
      case Op::kUpdateEdge:
      case Op::kDeleteEdge:
        edges.insert(p.edge_id());
        break;
      case Op::kSetProperty:
      case Op::kRemoveProperty:
        (p.target_type() == "node" ? nodes : edges).insert(p.target_id());
        break;
      case Op::kOpaque:
        break;
    }
  }
};

Element element_from(const pqxx::row& r, int first_json_column) {
  Element e;
  e.label = r["label"].c_str();
  if (auto props = graph::struct_from_json(r[first_json_column].c_str())) e.properties = *props;
  e.stamps = graph::stamps_from_json(r[first_json_column + 1].c_str());
  e.stamp = {r["version"].as<std::int64_t>(), r["client_id"].c_str()};
  return e;
}

// One channel's part of a batch.
struct ChannelWork {
  std::int64_t id = 0;
  std::string name;
  std::int64_t head = 0;
  graph::ConflictPolicy policy = graph::ConflictPolicy::kLastWriterWins;
  std::vector<std::size_t> idx;                       // its submissions, in order
  std::set<std::string> ids;                           // their patch ids
  Footprint footprint;
  std::unordered_map<std::string, std::int64_t> seen;  // patch id -> version held
  Graph graph;                                         // the rows it touches
};

// "(channel_id,'key'),..." for the (channel, key) pairs of every channel.
template <typename Keys>
std::string pairs(pqxx::transaction_base& tx, const std::vector<ChannelWork>& works, Keys keys) {
  std::string out;
  for (const ChannelWork& w : works) {
    for (const std::string& k : keys(w)) {
      out += out.empty() ? "(" : ",(";
      out += std::to_string(w.id) + "," + tx.quote(k) + ")";
    }
  }
  return out;
}

// The statements that load, for the whole batch, every duplicate id and
// every node and edge its patches may read. Empty when nothing is needed.
struct Loads {
  std::string seen, nodes, edges;
};

Loads load_queries(pqxx::transaction_base& tx, const std::vector<ChannelWork>& works) {
  Loads q;
  // Joins against VALUES lists: index lookups however large the batch (a
  // long `(a, b) IN (...)` list is planned as an OR chain).
  const std::string ids = pairs(tx, works, [](const ChannelWork& w) { return w.ids; });
  q.seen = "SELECT p.channel_id, p.patch_id, p.version FROM patches p JOIN (VALUES " + ids +
           ") AS v (c, k) ON p.channel_id = v.c AND p.patch_id = v.k";

  const std::string nodes = pairs(tx, works, [](const ChannelWork& w) { return w.footprint.nodes; });
  if (!nodes.empty()) {
    q.nodes = "SELECT n.node_id, n.label, n.properties::text, n.stamps::text, n.version, "
              "n.client_id, n.channel_id FROM nodes n JOIN (VALUES " + nodes +
              ") AS v (c, k) ON n.channel_id = v.c AND n.node_id = v.k";
  }

  const std::string edges = pairs(tx, works, [](const ChannelWork& w) { return w.footprint.edges; });
  const std::string deleted = pairs(tx, works, [](const ChannelWork& w) { return w.footprint.deleted_nodes; });
  const char* columns =
      "SELECT e.edge_id, e.label, e.properties::text, e.stamps::text, e.version, e.client_id, e.from_node_id, "
      "e.to_node_id, e.channel_id FROM edges e JOIN (VALUES ";
  std::vector<std::string> parts;
  if (!edges.empty()) parts.push_back(columns + edges + ") AS v (c, k) ON e.channel_id = v.c AND e.edge_id = v.k");
  if (!deleted.empty()) {
    // Deleting a node deletes its edges: load them too.
    parts.push_back(columns + deleted + ") AS v (c, k) ON e.channel_id = v.c AND e.from_node_id = v.k");
    parts.push_back(columns + deleted + ") AS v (c, k) ON e.channel_id = v.c AND e.to_node_id = v.k");
  }
  for (const std::string& part : parts) q.edges += (q.edges.empty() ? "" : " UNION ") + part;
  return q;
}

// Files each loaded row with its channel's work.
struct LoadResults {
  pqxx::result seen, nodes, edges;

  void apply(std::vector<ChannelWork>& works) const {
    std::unordered_map<std::int64_t, ChannelWork*> by_id;
    for (ChannelWork& w : works) by_id[w.id] = &w;
    for (const pqxx::row& r : seen) by_id[r[0].as<std::int64_t>()]->seen[r[1].c_str()] = r[2].as<std::int64_t>();
    for (const pqxx::row& r : nodes) {
      by_id[r["channel_id"].as<std::int64_t>()]->graph.load_node(r["node_id"].c_str(), element_from(r, 2));
    }
    for (const pqxx::row& r : edges) {
      Element e = element_from(r, 2);
      e.from = r["from_node_id"].c_str();
      e.to = r["to_node_id"].c_str();
      by_id[r["channel_id"].as<std::int64_t>()]->graph.load_edge(r["edge_id"].c_str(), std::move(e));
    }
  }
};

// The state writes of a batch, accumulated across channels and sent as one
// statement per table and kind.
struct StateWrites {
  std::string node_upserts, edge_upserts, node_deletes, edge_deletes;

  void add(pqxx::transaction_base& tx, std::int64_t channel_id, Graph& g) {
    const Graph::Dirty dirty = g.take_dirty();
    const std::string ch = std::to_string(channel_id);
    auto collect = [&](const std::set<std::string>& ids, bool nodes) {
      std::string& upserts = nodes ? node_upserts : edge_upserts;
      std::string& deletes = nodes ? node_deletes : edge_deletes;
      for (const std::string& id : ids) {
        const Element* e = nodes ? g.node(id) : g.edge(id);
        if (e == nullptr) {
          deletes += (deletes.empty() ? "(" : ",(") + ch + "," + tx.quote(id) + ")";
          continue;
        }
        upserts += upserts.empty() ? "(" : ",(";
        upserts += ch + "," + tx.quote(id) + "," + tx.quote(e->label) + ",";
        if (!nodes) upserts += tx.quote(e->from) + "," + tx.quote(e->to) + ",";
        upserts += tx.quote(graph::to_json(e->properties)) + "," + tx.quote(graph::stamps_to_json(e->stamps)) + "," +
                   std::to_string(e->stamp.version) + "," + tx.quote(e->stamp.client_id) + ")";
      }
    };
    collect(dirty.nodes, true);
    collect(dirty.edges, false);
  }

  // Appends the statements, each ending in "; ".
  void append_sql(std::string& sql) const {
    if (!node_upserts.empty()) {
      sql += "INSERT INTO nodes (channel_id, node_id, label, properties, stamps, version, client_id) VALUES " +
             node_upserts +
             " ON CONFLICT (channel_id, node_id) DO UPDATE SET label = EXCLUDED.label, "
             "properties = EXCLUDED.properties, stamps = EXCLUDED.stamps, version = EXCLUDED.version, "
             "client_id = EXCLUDED.client_id; ";
    }
    if (!edge_upserts.empty()) {
      sql += "INSERT INTO edges (channel_id, edge_id, label, from_node_id, to_node_id, properties, stamps, "
             "version, client_id) VALUES " + edge_upserts +
             " ON CONFLICT (channel_id, edge_id) DO UPDATE SET label = EXCLUDED.label, "
             "from_node_id = EXCLUDED.from_node_id, to_node_id = EXCLUDED.to_node_id, "
             "properties = EXCLUDED.properties, stamps = EXCLUDED.stamps, version = EXCLUDED.version, "
             "client_id = EXCLUDED.client_id; ";
    }
    if (!node_deletes.empty()) {
      sql += "DELETE FROM nodes n USING (VALUES " + node_deletes +
             ") AS v (c, k) WHERE n.channel_id = v.c AND n.node_id = v.k; ";
    }
    if (!edge_deletes.empty()) {
      sql += "DELETE FROM edges e USING (VALUES " + edge_deletes +
             ") AS v (c, k) WHERE e.channel_id = v.c AND e.edge_id = v.k; ";
    }
  }
};

bool retryable(const pqxx::sql_error& e) {
  const std::string& state = e.sqlstate();
  // serialization_failure, deadlock_detected, lock_not_available, admin shutdown,
  // and the connection classes.
  return state == "40001" || state == "40P01" || state == "55P03" || state.rfind("57P", 0) == 0 ||
         state.rfind("08", 0) == 0;
}

}  // namespace

// Log pages are read on a second, plain libpq connection in binary result
// format: bodies arrive as their bytes (not hex text to unescape, at twice
// the size), which is most of what a catch-up costs. libpqxx 6 cannot ask
// for binary results.
struct RawConnection {
  explicit RawConnection(const std::string& url) : pg(PQconnectdb(url.c_str())) {
    if (PQstatus(pg) != CONNECTION_OK) throw pqxx::broken_connection(PQerrorMessage(pg));
    PGresult* r = PQprepare(pg, "read_page",
                            "SELECT version, body, patch_id, client_id FROM patches WHERE channel_id = $1 "
                            "AND version > $2 AND version <= $3 ORDER BY version LIMIT $4",
                            4, nullptr);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) throw pqxx::broken_connection(PQerrorMessage(pg));
  }
  ~RawConnection() { PQfinish(pg); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  PGconn* pg;
};

struct PgChangeLog::Connection {
  explicit Connection(const std::string& url) : pq(url), url(url) {
    pq.prepare("channel_row", "SELECT id, head, conflict_policy FROM channels WHERE name = $1");
  }
  // Opened on first use: only log readers need it.
  PGconn* pages() {
    if (!raw) raw = std::make_unique<RawConnection>(url);
    return raw->pg;
  }
  pqxx::connection pq;
  std::string url;
  std::unique_ptr<RawConnection> raw;
};

PgChangeLog::PgChangeLog(std::string database_url, std::string instance)
    : url_(std::move(database_url)), instance_(std::move(instance)) {}
PgChangeLog::~PgChangeLog() = default;

PgChangeLog::Connection& PgChangeLog::conn() {
  if (!conn_ || !conn_->pq.is_open()) {
    conn_.reset();
    conn_ = std::make_unique<Connection>(url_);
  }
  return *conn_;
}

// Channel rows are created in their own committed transaction, before the
// batch's transaction locks them: a row inserted inside the batch's
// transaction would be invisible to another instance's `FOR UPDATE` until
// commit, and two instances could then each believe they own the channel.
void PgChangeLog::ensure_channels(const std::set<std::string>& names) {
  std::set<std::string> missing;
  for (const std::string& n : names) {
    if (!channel_ids_.count(n)) missing.insert(n);
  }
  if (missing.empty()) return;
  pqxx::work tx(conn().pq);
  std::string values;
  for (const std::string& n : missing) values += (values.empty() ? "(" : ",(") + tx.quote(n) + ")";
  tx.exec("INSERT INTO channels (name) VALUES " + values + " ON CONFLICT (name) DO NOTHING");
  for (const pqxx::row& r : tx.exec("SELECT id, name FROM channels WHERE name IN " + quoted_list(tx, missing))) {
    channel_ids_[r[1].c_str()] = r[0].as<std::int64_t>();
  }
  tx.commit();
}

// A batch is two round trips to PostgreSQL. The first sends BEGIN, locks the
// batch's channel rows and loads what its patches read; the loads run after
// the lock, in the same statement string, so they see the committed state.
// The second sends every write and COMMIT. BEGIN and COMMIT are sent by hand
// (on a nontransaction) to save the two round trips libpqxx's transaction
// would spend on them, so this function also owns the in-doubt rule: a
// connection lost during the second round trip may have committed.
absl::StatusOr<CommitResult> PgChangeLog::commit(const std::vector<Submission>& batch) {
  CommitResult result;
  result.acks.resize(batch.size());
  // Channels in name order: every instance locks channel rows in the same
  // order, so two instances never deadlock on each other's batches.
  std::map<std::string, std::vector<std::size_t>> by_channel;
  for (std::size_t i = 0; i < batch.size(); ++i) by_channel[batch[i].channel].push_back(i);
  std::set<std::string> names;
  for (const auto& [name, idx] : by_channel) names.insert(name);

  bool committing = false;
  try {
    ensure_channels(names);
    std::vector<ChannelWork> works(names.size());
    std::size_t c = 0;
    for (const auto& [name, idx] : by_channel) {
      ChannelWork& w = works[c++];
      w.id = channel_ids_.at(name);
      w.name = name;
      w.idx = idx;
      for (std::size_t i : w.idx) {
        w.ids.insert(batch[i].patch.id());
        w.footprint.add(batch[i].patch);
      }
    }

    pqxx::nontransaction tx(conn().pq);
    pqxx::result locked;
    LoadResults loaded;
    {
      const Loads q = load_queries(tx, works);
      pqxx::pipeline pipe(tx);
      pipe.retain(8);  // hold the statements back, then send them as one string
      const auto begin = pipe.insert("BEGIN");
      const auto lock = pipe.insert("SELECT id, head, conflict_policy FROM channels WHERE name IN " +
                                    quoted_list(tx, names) + " ORDER BY name FOR UPDATE");
      const auto seen = pipe.insert(q.seen);
      const auto nodes = q.nodes.empty() ? -1 : pipe.insert(q.nodes);
      const auto edges = q.edges.empty() ? -1 : pipe.insert(q.edges);
      pipe.resume();
      pipe.retrieve(begin);
      locked = pipe.retrieve(lock);
      loaded.seen = pipe.retrieve(seen);
      if (nodes >= 0) loaded.nodes = pipe.retrieve(nodes);
      if (edges >= 0) loaded.edges = pipe.retrieve(edges);
      pipe.complete();
    }
    // The rows come in the database's collation order, which need not be
    // the byte order `works` is in: match them by id.
    std::size_t matched = 0;
    for (const pqxx::row& r : locked) {
      for (ChannelWork& w : works) {
        if (w.id != r["id"].as<std::int64_t>()) continue;
        w.head = r["head"].as<std::int64_t>();
        w.policy = graph::parse_conflict_policy(r["conflict_policy"].c_str())
                       .value_or(graph::ConflictPolicy::kLastWriterWins);
        ++matched;
      }
    }
    if (matched != works.size()) {
      channel_ids_.clear();  // a channel row was deleted (or replaced) under us
      conn_.reset();         // and with it the open transaction
      return absl::UnavailableError("a channel row disappeared; retry");
    }
    loaded.apply(works);

    std::string rows;
    std::string heads;
    std::string peer_rows;
    StateWrites state;
    std::vector<std::string> notices;
    for (ChannelWork& w : works) {
      ChannelBatch accepted{w.name, {}, 0};
      std::map<std::string, std::int64_t> peers;  // site id -> latest version in this batch
      for (std::size_t i : w.idx) {
        const api::Patch& p = batch[i].patch;
        if (auto it = w.seen.find(p.id()); it != w.seen.end()) {
          result.acks[i] = make_ack(p, api::Ack::IGNORED, it->second);
          continue;
        }
        if (auto rejection = w.graph.apply(p, w.head + 1, w.policy)) {
          result.acks[i] = make_ack(p, api::Ack::REJECTED, w.head);
          result.acks[i].set_code(rejection->code);
          result.acks[i].set_reason(rejection->reason);
          continue;
        }
        const std::int64_t version = ++w.head;
        w.seen.emplace(p.id(), version);
        result.acks[i] = make_ack(p, api::Ack::ACCEPTED, version);
        const std::string body = p.SerializeAsString();  // server_version is never set here
        rows += rows.empty() ? "(" : ",(";
        rows += std::to_string(w.id) + "," + std::to_string(version) + "," + tx.quote(p.id()) + "," +
                tx.quote(p.client_id()) + "," + tx.quote(p.op()) + "," +
                tx.quote_raw(reinterpret_cast<const unsigned char*>(body.data()), body.size()) + ")";
        if (p.has_peer()) peers[p.peer().site_id()] = p.peer().version();
        auto stored = std::make_shared<api::Patch>(p);
        stored->set_server_version(version);
        accepted.patches.push_back(std::move(stored));
      }
      if (accepted.patches.empty()) continue;
      state.add(tx, w.id, w.graph);
      for (const auto& [site, version] : peers) {
        peer_rows += peer_rows.empty() ? "(" : ",(";
        peer_rows += std::to_string(w.id) + "," + tx.quote(site) + "," + std::to_string(version) + ")";
      }
      heads += (heads.empty() ? "(" : ",(") + std::to_string(w.id) + "," + std::to_string(w.head) + ")";
      if (notices.empty() || notices.back().size() > 7000) notices.push_back(instance_);
      notices.back() += "\n" + w.name + " " + std::to_string(w.head);
      accepted.head = w.head;
      result.accepted.push_back(std::move(accepted));
    }

    // In a statement string, an error skips every later statement, COMMIT
    // included, and leaves the transaction aborted: nothing is stored.
    std::string sql;
    if (!rows.empty()) {
      sql += "INSERT INTO patches (channel_id, version, patch_id, client_id, op, body) VALUES " + rows + "; ";
      state.append_sql(sql);
      if (!peer_rows.empty()) {
        sql += "INSERT INTO crdt_peers (channel_id, site_id, version) VALUES " + peer_rows +
               " ON CONFLICT (channel_id, site_id) DO UPDATE SET version = EXCLUDED.version, updated_at = now(); ";
      }
      sql += "UPDATE channels SET head = v.head FROM (VALUES " + heads +
             ") AS v (id, head) WHERE channels.id = v.id; ";
    }
    for (const std::string& notice : notices) {
      // Delivered to listeners only if and when the transaction commits.
      sql += std::string("SELECT pg_notify('") + kHeadNotifyChannel + "', " + tx.quote(notice) + "); ";
    }
    sql += "COMMIT";
    committing = true;
    tx.exec(sql);
  } catch (const pqxx::broken_connection& e) {
    conn_.reset();
    if (committing) return absl::UnknownError(std::string("commit outcome unknown: ") + e.what());
    return absl::UnavailableError(std::string("database connection lost: ") + e.what());
  } catch (const pqxx::sql_error& e) {
    conn_.reset();  // its transaction is aborted; a new connection starts clean
    if (retryable(e)) return absl::UnavailableError(e.what());
    return absl::InternalError(e.what());
  } catch (const std::exception& e) {
    conn_.reset();
    return absl::InternalError(e.what());
  }
  return result;
}

absl::StatusOr<Page> PgChangeLog::read(const std::string& channel, std::int64_t after,
                                       std::size_t limit, std::size_t max_bytes) {
  Page page;
  try {
    // Versions are immutable once committed, so a page needs no snapshot:
    // reading the head first and capping the page at it keeps has_more true
    // to what was read.
    pqxx::nontransaction tx(conn().pq);
    const pqxx::result ch = tx.exec_prepared("channel_row", channel);
    if (ch.empty()) return page;
    const std::int64_t id = ch[0][0].as<std::int64_t>();
    page.head = ch[0][1].as<std::int64_t>();
    if (after >= page.head) return page;
    std::size_t bytes = 0;
    const std::string args[] = {std::to_string(id), std::to_string(after), std::to_string(page.head),
                                std::to_string(limit)};
    const char* values[] = {args[0].c_str(), args[1].c_str(), args[2].c_str(), args[3].c_str()};
    std::unique_ptr<PGresult, void (*)(PGresult*)> rows(
        PQexecPrepared(conn().pages(), "read_page", 4, values, nullptr, nullptr, /*binary=*/1), PQclear);
    if (PQresultStatus(rows.get()) != PGRES_TUPLES_OK) {
      throw pqxx::broken_connection(PQerrorMessage(conn().pages()));
    }
    const int n = PQntuples(rows.get());
    page.patches.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      StoredPatch& p = page.patches.emplace_back();
      std::uint64_t version_be;  // int8 in binary format: 8 bytes, network order
      std::memcpy(&version_be, PQgetvalue(rows.get(), i, 0), sizeof version_be);
      p.version = static_cast<std::int64_t>(be64toh(version_be));
      p.body.assign(PQgetvalue(rows.get(), i, 1), static_cast<std::size_t>(PQgetlength(rows.get(), i, 1)));
      p.id.assign(PQgetvalue(rows.get(), i, 2), static_cast<std::size_t>(PQgetlength(rows.get(), i, 2)));
      p.client_id.assign(PQgetvalue(rows.get(), i, 3), static_cast<std::size_t>(PQgetlength(rows.get(), i, 3)));
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
    pqxx::nontransaction tx(conn().pq);
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
    pqxx::work tx(conn().pq);
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
