#include "store/pg_snapshot.h"

#include "graph/json.h"
#include "store/pq.h"

namespace syncd::store {
namespace {

// Nodes before edges: every edge's endpoints exist by the time a client
// applying the pages in order reaches it. No order within each: sorting
// text ids by collation would cost more than the rest of the snapshot.
constexpr const char* kChannel = "SELECT id, head, compacted_through FROM channels WHERE name = $1";
constexpr const char* kNodes =
    "SELECT node_id, label, properties::text, client_id FROM nodes WHERE channel_id = $1";
constexpr const char* kEdges =
    "SELECT edge_id, label, from_node_id, to_node_id, properties::text, client_id FROM edges "
    "WHERE channel_id = $1";

// The snapshot patch for one element. Its id names the snapshot and the
// element, so it can never be mistaken for a patch a client sent.
StoredPatch element_patch(std::int64_t version, const char* op, const std::string& id_prefix,
                          std::string_view element_id, std::string_view label, std::string_view properties,
                          std::string_view client_id, api::Patch& scratch) {
  scratch.Clear();
  scratch.set_id(id_prefix + std::string(element_id));
  scratch.set_client_id(std::string(client_id));
  scratch.set_op(op);
  auto& fields = *scratch.mutable_data()->mutable_fields();
  fields["label"].set_string_value(std::string(label));
  if (auto props = graph::struct_from_json(std::string(properties))) {
    *fields["properties"].mutable_struct_value() = std::move(*props);
  } else {
    fields["properties"].mutable_struct_value();
  }
  return StoredPatch{version, scratch.id(), scratch.client_id(), {}};
}

}  // namespace

void prepare_snapshot_statements(PGconn* conn) {
  pq::prepare(conn, "snapshot_channel", kChannel);
  pq::prepare(conn, "snapshot_nodes", kNodes);
  pq::prepare(conn, "snapshot_edges", kEdges);
}

Snapshot read_snapshot(PGconn* conn, const std::string& channel) {
  Snapshot snap;
  pq::exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  const pq::Result row = pq::exec_prepared(conn, "snapshot_channel", {&channel});
  if (PQntuples(row.get()) == 0) {
    pq::exec(conn, "COMMIT");
    return snap;
  }
  const std::string id(pq::text(row.get(), 0, 0));
  snap.version = pq::int64(row.get(), 0, 1);
  snap.compacted_through = pq::int64(row.get(), 0, 2);
  const pq::Result nodes = pq::exec_prepared(conn, "snapshot_nodes", {&id});
  const pq::Result edges = pq::exec_prepared(conn, "snapshot_edges", {&id});
  pq::exec(conn, "COMMIT");

  const int node_count = PQntuples(nodes.get());
  const int edge_count = PQntuples(edges.get());
  snap.patches.reserve(static_cast<std::size_t>(node_count + edge_count));
  const std::string prefix = "snapshot:" + std::to_string(snap.version) + ":";
  api::Patch p;
  for (int i = 0; i < node_count; ++i) {
    const auto node_id = pq::text(nodes.get(), i, 0);
    StoredPatch sp = element_patch(snap.version, "create_node", prefix + "node:", node_id, pq::text(nodes.get(), i, 1),
                                   pq::text(nodes.get(), i, 2), pq::text(nodes.get(), i, 3), p);
    p.set_node_id(std::string(node_id));
    sp.body = p.SerializeAsString();
    snap.patches.push_back(std::move(sp));
  }
  for (int i = 0; i < edge_count; ++i) {
    const auto edge_id = pq::text(edges.get(), i, 0);
    StoredPatch sp = element_patch(snap.version, "create_edge", prefix + "edge:", edge_id, pq::text(edges.get(), i, 1),
                                   pq::text(edges.get(), i, 4), pq::text(edges.get(), i, 5), p);
    p.set_edge_id(std::string(edge_id));
    auto& fields = *p.mutable_data()->mutable_fields();
    fields["fromNodeId"].set_string_value(std::string(pq::text(edges.get(), i, 2)));
    fields["toNodeId"].set_string_value(std::string(pq::text(edges.get(), i, 3)));
    sp.body = p.SerializeAsString();
    snap.patches.push_back(std::move(sp));
  }
  return snap;
}

}  // namespace syncd::store
