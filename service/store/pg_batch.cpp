#include "store/pg_batch.h"

#include <set>
#include <unordered_map>

#include "graph/graph.h"
#include "graph/json.h"
#include "store/batch_footprint.h"
#include "store/pg_batch_sql.h"
#include "store/pg_change_log.h"
#include "store/pq.h"

namespace syncd::store {
namespace {

using graph::Element;
using graph::Graph;
using namespace batch_sql;

api::Ack make_ack(const api::Patch& p, api::Ack::Status status, std::int64_t version) {
  api::Ack ack;
  ack.set_patch_id(p.id());
  ack.set_status(status);
  ack.set_server_version(version);
  return ack;
}

// Columns 1-5 of a node or edge row: label, properties, stamps, version, client id.
Element element_from(const PGresult* r, int row) {
  Element e;
  e.label = pq::text(r, row, 1);
  if (auto props = graph::struct_from_json(PQgetvalue(r, row, 2))) e.properties = *props;
  e.stamps = graph::stamps_from_json(PQgetvalue(r, row, 3));
  e.stamp = {pq::int64(r, row, 4), std::string(pq::text(r, row, 5))};
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

// (channel id, key) pairs as two parallel arrays.
struct Pairs {
  pq::TextArray channels, keys;
  void add(std::int64_t channel, const std::string& key) {
    channels.add(channel);
    keys.add(key);
  }
};

// The rows a batch writes, one array per column.
struct Writes {
  pq::TextArray patch_channel, patch_version, patch_id, patch_client, patch_op, patch_body;
  pq::TextArray node_channel, node_id, node_label, node_props, node_stamps, node_version, node_client;
  pq::TextArray edge_channel, edge_id, edge_label, edge_from, edge_to, edge_props, edge_stamps, edge_version,
      edge_client;
  Pairs node_deletes, edge_deletes;
  pq::TextArray peer_channel, peer_site, peer_version;
  pq::TextArray head_channel, head_version;
  pq::TextArray notices;

  void add_state(std::int64_t channel, Graph& g) {
    const Graph::Dirty dirty = g.take_dirty();
    for (const std::string& id : dirty.nodes) {
      const Element* e = g.node(id);
      if (e == nullptr) {
        node_deletes.add(channel, id);
        continue;
      }
      node_channel.add(channel);
      node_id.add(id);
      node_label.add(e->label);
      node_props.add(graph::to_json(e->properties));
      node_stamps.add(graph::stamps_to_json(e->stamps));
      node_version.add(e->stamp.version);
      node_client.add(e->stamp.client_id);
    }
    for (const std::string& id : dirty.edges) {
      const Element* e = g.edge(id);
      if (e == nullptr) {
        edge_deletes.add(channel, id);
        continue;
      }
      edge_channel.add(channel);
      edge_id.add(id);
      edge_label.add(e->label);
      edge_from.add(e->from);
      edge_to.add(e->to);
      edge_props.add(graph::to_json(e->properties));
      edge_stamps.add(graph::stamps_to_json(e->stamps));
      edge_version.add(e->stamp.version);
      edge_client.add(e->stamp.client_id);
    }
  }

  // Queues the statements; returns how many.
  int send(pq::Pipeline& p) {
    int n = 0;
    auto send = [&](const Statement& s, std::initializer_list<const std::string*> params) {
      p.send_prepared(s.name, params);
      ++n;
    };
    if (!patch_channel.empty()) {
      send(kInsertPatches, {&patch_channel.str(), &patch_version.str(), &patch_id.str(), &patch_client.str(),
                            &patch_op.str(), &patch_body.str()});
    }
    if (!node_channel.empty()) {
      send(kUpsertNodes, {&node_channel.str(), &node_id.str(), &node_label.str(), &node_props.str(),
                          &node_stamps.str(), &node_version.str(), &node_client.str()});
    }
    if (!edge_channel.empty()) {
      send(kUpsertEdges, {&edge_channel.str(), &edge_id.str(), &edge_label.str(), &edge_from.str(), &edge_to.str(),
                          &edge_props.str(), &edge_stamps.str(), &edge_version.str(), &edge_client.str()});
    }
    if (!node_deletes.channels.empty()) send(kDeleteNodes, {&node_deletes.channels.str(), &node_deletes.keys.str()});
    if (!edge_deletes.channels.empty()) send(kDeleteEdges, {&edge_deletes.channels.str(), &edge_deletes.keys.str()});
    if (!peer_channel.empty()) send(kUpsertPeers, {&peer_channel.str(), &peer_site.str(), &peer_version.str()});
    if (!head_channel.empty()) send(kHeads, {&head_channel.str(), &head_version.str()});
    return n;
  }

  // Queues the announcement of the new heads as a transaction of its own,
  // after the batch's COMMIT; returns how many statements. Not in the
  // batch's transaction: PostgreSQL holds one database-wide lock from a
  // notifying transaction's pre-commit to its end, WAL flush included, so
  // notifying batches would commit one after another instead of sharing a
  // flush. Committed without waiting for the flush (nothing durable in it;
  // a notification is delivered at commit either way), it holds that lock
  // for microseconds. A crash between the two transactions loses the
  // announcement: other instances' head poll (engine/head_listener.h)
  // finds those versions instead.
  int send_notices(pq::Pipeline& p) {
    if (notices.empty()) return 0;
    p.send("BEGIN");
    p.send("SET LOCAL synchronous_commit TO off");
    p.send_prepared(kNotify.name, {&notices.str()});
    p.send("COMMIT");
    return 4;
  }
};

bool retryable(const std::string& state) {
  // serialization_failure, deadlock_detected, lock_not_available, admin shutdown.
  return state == "40001" || state == "40P01" || state == "55P03" || state.rfind("57P", 0) == 0;
}

// Creates the rows of channels not in `ids` yet and caches their ids. In
// its own committed transaction, before the batch's transaction locks them:
// a row inserted inside the batch's transaction would be invisible to
// another instance's `FOR UPDATE` until commit, and two instances could
// then each believe they own the channel.
void ensure_channels(PGconn* conn, const std::set<std::string>& names, ChannelIds& ids) {
  pq::TextArray missing;
  for (const std::string& n : names) {
    if (!ids.count(n)) missing.add(n);
  }
  if (missing.empty()) return;
  pq::Pipeline p(conn);  // both statements in one implicit transaction
  p.send_prepared(kEnsureChannels.name, {&missing.str()});
  p.send_prepared(kChannelIds.name, {&missing.str()});
  p.sync();
  p.next();
  const pq::Result rows = p.next();
  p.finish();
  for (int i = 0; i < PQntuples(rows.get()); ++i) {
    ids[std::string(pq::text(rows.get(), i, 1))] = pq::int64(rows.get(), i, 0);
  }
}

}  // namespace

void configure_session(PGconn* conn) {
  // A plan is made on a statement's first use and kept until the tables it
  // reads are next analyzed. Made on a new deployment's empty tables,
  // PostgreSQL's choice is to hash the batch's keys and scan the whole
  // table; kept while the table grows, that makes every batch slower (a
  // fifth of the throughput or less within a minute of writes). Every
  // statement here finds a batch's rows by key, for which an index lookup
  // per key is right at every table size, so plans that scan whole tables
  // are ruled out (and the loads use LATERAL, which rules out the other
  // way to scan a whole table: its full index, on the outer side).
  pq::exec(conn,
           "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_hashjoin = off; "
           "SET enable_mergejoin = off");
}

void prepare_batch_statements(PGconn* conn) {
  for (const Statement* s : {&kEnsureChannels, &kChannelIds, &kLock, &kSeen, &kNodes, &kEdges, &kInsertPatches,
                             &kUpsertNodes, &kUpsertEdges, &kDeleteNodes, &kDeleteEdges, &kUpsertPeers, &kHeads,
                             &kNotify}) {
    pq::prepare(conn, s->name, s->sql.c_str());
  }
}

absl::StatusOr<CommitResult> commit_batch(PGconn* conn, const std::vector<Submission>& batch, ChannelIds& ids,
                                          const std::string& instance) {
  CommitResult result;
  result.acks.resize(batch.size());
  std::map<std::string, std::vector<std::size_t>> by_channel;
  for (std::size_t i = 0; i < batch.size(); ++i) by_channel[batch[i].channel].push_back(i);
  std::set<std::string> names;
  for (const auto& [name, idx] : by_channel) names.insert(name);

  bool committing = false;  // set once COMMIT may reach the server
  try {
    ensure_channels(conn, names, ids);
    std::vector<ChannelWork> works(names.size());
    pq::TextArray lock_ids;
    Pairs seen_keys, node_keys, edge_keys, deleted_keys;
    std::size_t c = 0;
    for (const auto& [name, idx] : by_channel) {
      const auto id = ids.find(name);
      if (id == ids.end()) return absl::UnavailableError("channel " + name + " disappeared as it was created; retry");
      ChannelWork& w = works[c++];
      w.id = id->second;
      w.name = name;
      w.idx = idx;
      for (std::size_t i : w.idx) {
        w.ids.insert(batch[i].patch.id());
        w.footprint.add(batch[i].patch);
      }
      lock_ids.add(w.id);
      for (const std::string& k : w.ids) seen_keys.add(w.id, k);
      for (const std::string& k : w.footprint.nodes) node_keys.add(w.id, k);
      for (const std::string& k : w.footprint.edges) edge_keys.add(w.id, k);
      for (const std::string& k : w.footprint.deleted_nodes) deleted_keys.add(w.id, k);
    }

    // Round trip 1: BEGIN, lock, loads.
    pq::Pipeline reads(conn);
    reads.send("BEGIN");
    reads.send_prepared(kLock.name, {&lock_ids.str()});
    reads.send_prepared(kSeen.name, {&seen_keys.channels.str(), &seen_keys.keys.str()});
    const bool load_nodes = !node_keys.channels.empty();
    const bool load_edges = !edge_keys.channels.empty() || !deleted_keys.channels.empty();
    if (load_nodes) reads.send_prepared(kNodes.name, {&node_keys.channels.str(), &node_keys.keys.str()});
    if (load_edges) {
      reads.send_prepared(kEdges.name, {&edge_keys.channels.str(), &edge_keys.keys.str(),
                                        &deleted_keys.channels.str(), &deleted_keys.keys.str()});
    }
    reads.sync();
    reads.next();
    const pq::Result locked = reads.next();
    const pq::Result seen = reads.next();
    const pq::Result nodes = load_nodes ? reads.next() : nullptr;
    const pq::Result edges = load_edges ? reads.next() : nullptr;
    reads.finish();

    std::unordered_map<std::int64_t, ChannelWork*> by_id;
    for (ChannelWork& w : works) by_id[w.id] = &w;
    for (int i = 0; i < PQntuples(locked.get()); ++i) {
      ChannelWork& w = *by_id.at(pq::int64(locked.get(), i, 0));
      w.head = pq::int64(locked.get(), i, 1);
      w.policy = graph::parse_conflict_policy(pq::text(locked.get(), i, 2))
                     .value_or(graph::ConflictPolicy::kLastWriterWins);
    }
    if (static_cast<std::size_t>(PQntuples(locked.get())) != works.size()) {
      // Deleted since its id was cached (ChangeLog::commit retries).
      return absl::AbortedError("a channel row disappeared");
    }
    for (int i = 0; i < PQntuples(seen.get()); ++i) {
      by_id.at(pq::int64(seen.get(), i, 0))->seen[std::string(pq::text(seen.get(), i, 1))] =
          pq::int64(seen.get(), i, 2);
    }
    for (int i = 0; nodes && i < PQntuples(nodes.get()); ++i) {
      by_id.at(pq::int64(nodes.get(), i, 6))->graph.load_node(std::string(pq::text(nodes.get(), i, 0)),
                                                              element_from(nodes.get(), i));
    }
    for (int i = 0; edges && i < PQntuples(edges.get()); ++i) {
      Element e = element_from(edges.get(), i);
      e.from = pq::text(edges.get(), i, 6);
      e.to = pq::text(edges.get(), i, 7);
      by_id.at(pq::int64(edges.get(), i, 8))->graph.load_edge(std::string(pq::text(edges.get(), i, 0)),
                                                              std::move(e));
    }

    // Validate and apply, in submission order within each channel.
    Writes writes;
    std::string notice;
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
        writes.patch_channel.add(w.id);
        writes.patch_version.add(version);
        writes.patch_id.add(p.id());
        writes.patch_client.add(p.client_id());
        writes.patch_op.add(p.op());
        writes.patch_body.add_bytea(p.SerializeAsString());  // server_version is never set here
        if (p.has_peer()) peers[p.peer().site_id()] = p.peer().version();
        auto stored = std::make_shared<api::Patch>(p);
        stored->set_server_version(version);
        accepted.patches.push_back(std::move(stored));
      }
      if (accepted.patches.empty()) continue;
      writes.add_state(w.id, w.graph);
      for (const auto& [site, version] : peers) {
        writes.peer_channel.add(w.id);
        writes.peer_site.add(site);
        writes.peer_version.add(version);
      }
      writes.head_channel.add(w.id);
      writes.head_version.add(w.head);
      if (notice.empty() || notice.size() > 7000) {  // NOTIFY payloads stay under 8000 bytes
        if (!notice.empty()) writes.notices.add(notice);
        notice = instance;
      }
      notice += "\n" + w.name + " " + std::to_string(w.head);
      accepted.head = w.head;
      result.accepted.push_back(std::move(accepted));
    }
    if (!notice.empty()) writes.notices.add(notice);

    // Round trip 2: the writes and COMMIT. An error skips every later
    // statement, COMMIT included: nothing is stored.
    pq::Pipeline commit(conn);
    const int statements = writes.send(commit);
    commit.send("COMMIT");
    commit.flush_request();  // the acks need not wait for the announcement
    const int notices = writes.send_notices(commit);
    committing = true;
    commit.sync();
    for (int i = 0; i <= statements; ++i) commit.next();
    committing = false;  // COMMIT answered: the batch is durable
    try {
      for (int i = 0; i < notices; ++i) commit.next();
      commit.finish();
    } catch (const pq::Error& e) {
      // The batch is stored; only its announcement or the Sync's answer is
      // missing. The connection, broken or still in pipeline mode, is seen
      // as such and replaced on the caller's next use.
      result.unannounced = e.what();
    }
  } catch (const pq::Error& e) {
    if (e.connection_lost()) {
      if (committing) return absl::UnknownError(std::string("commit outcome unknown: ") + e.what());
      // A silent database: retrying at once would only wait as long again.
      if (e.timed_out()) return absl::DeadlineExceededError(e.what());
      return absl::UnavailableError(std::string("database connection lost: ") + e.what());
    }
    if (retryable(e.sqlstate())) return absl::UnavailableError(e.what());
    return absl::InternalError(e.what());
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
  return result;
}

}  // namespace syncd::store
