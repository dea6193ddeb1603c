#pragma once
// The statements of a commit batch (store/pg_batch.cpp), prepared once per
// connection. Private to pg_batch.cpp.

#include <string>

#include "store/pg_change_log.h"

namespace syncd::store::batch_sql {

// A batch is two round trips. The first sends BEGIN, locks the batch's
// channel rows and loads what its patches read: duplicate ids, nodes and
// edges. The loads run after the lock, so they see the committed state.
// The second sends every write and COMMIT. Statements take their rows as
// arrays, so each is prepared once and planned once, whatever the batch's
// size, and each is one statement for the whole batch.
struct Statement {
  const char* name;
  std::string sql;
};

inline const Statement kEnsureChannels{"batch_ensure_channels",
                                "INSERT INTO channels (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING"};
inline const Statement kChannelIds{"batch_channel_ids", "SELECT id, name FROM channels WHERE name = ANY($1::text[])"};
// In name order: every instance locks channel rows in the same order, so
// two instances never deadlock on each other's batches.
inline const Statement kLock{"batch_lock",
                      "SELECT id, head, conflict_policy FROM channels WHERE id = ANY($1::bigint[]) "
                      "ORDER BY name FOR UPDATE"};
// Ids the log holds, and ids of compacted patches: one statement, one
// snapshot, so an id a compaction is moving is found in exactly one place.
//
// These loads join a batch's keys (unnest) to a table through LATERAL (with
// OFFSET 0 or a UNION, so that the planner cannot flatten it back into a
// join), so each key is an index lookup whatever the plan. A plain join lets the
// planner put the table on the outside when it looked empty at planning
// time (a new deployment's first batch): a full scan of its index with
// every key tested against every row, which costs seconds per batch once
// the table has grown, and is kept until the table is next analyzed.
inline const Statement kSeen{"batch_seen",
                      "SELECT v.c, v.k, x.version FROM unnest($1::bigint[], $2::text[]) AS v (c, k) "
                      "CROSS JOIN LATERAL (SELECT p.version FROM patches p WHERE p.channel_id = v.c AND "
                      "p.patch_id = v.k UNION ALL SELECT i.version FROM compacted_ids i WHERE i.channel_id = v.c "
                      "AND i.patch_id = v.k) AS x"};
// Columns 1-5 of both loads are the element (see element_from).
inline const Statement kNodes{"batch_nodes",
                       "SELECT n.node_id, n.label, n.properties::text, n.stamps::text, n.version, n.client_id, "
                       "n.channel_id FROM unnest($1::bigint[], $2::text[]) AS v (c, k) CROSS JOIN LATERAL "
                       "(SELECT * FROM nodes n WHERE n.channel_id = v.c AND n.node_id = v.k OFFSET 0) AS n"};
inline const std::string kEdgeColumns =
    "SELECT e.edge_id, e.label, e.properties::text, e.stamps::text, e.version, e.client_id, e.from_node_id, "
    "e.to_node_id, e.channel_id FROM ";
// Edges by id, and (for deleted nodes, whose edges go too) by either end.
inline const Statement kEdges{"batch_edges",
                       kEdgeColumns + "unnest($1::bigint[], $2::text[]) AS v (c, k) CROSS JOIN LATERAL "
                       "(SELECT * FROM edges e WHERE e.channel_id = v.c AND e.edge_id = v.k OFFSET 0) AS e UNION " +
                       kEdgeColumns + "unnest($3::bigint[], $4::text[]) AS v (c, k) CROSS JOIN LATERAL "
                       "(SELECT * FROM edges e WHERE e.channel_id = v.c AND e.from_node_id = v.k OFFSET 0) AS e UNION " +
                       kEdgeColumns + "unnest($3::bigint[], $4::text[]) AS v (c, k) CROSS JOIN LATERAL "
                       "(SELECT * FROM edges e WHERE e.channel_id = v.c AND e.to_node_id = v.k OFFSET 0) AS e"};
inline const Statement kInsertPatches{"batch_insert_patches",
                               "INSERT INTO patches (channel_id, version, patch_id, client_id, op, body) SELECT * "
                               "FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], "
                               "$6::bytea[])"};
inline const Statement kUpsertNodes{"batch_upsert_nodes",
                             "INSERT INTO nodes (channel_id, node_id, label, properties, stamps, version, client_id) "
                             "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], "
                             "$6::bigint[], $7::text[]) ON CONFLICT (channel_id, node_id) DO UPDATE SET "
                             "label = EXCLUDED.label, properties = EXCLUDED.properties, stamps = EXCLUDED.stamps, "
                             "version = EXCLUDED.version, client_id = EXCLUDED.client_id"};
inline const Statement kUpsertEdges{"batch_upsert_edges",
                             "INSERT INTO edges (channel_id, edge_id, label, from_node_id, to_node_id, properties, "
                             "stamps, version, client_id) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], "
                             "$4::text[], $5::text[], $6::jsonb[], $7::jsonb[], $8::bigint[], $9::text[]) "
                             "ON CONFLICT (channel_id, edge_id) DO UPDATE SET label = EXCLUDED.label, "
                             "from_node_id = EXCLUDED.from_node_id, to_node_id = EXCLUDED.to_node_id, "
                             "properties = EXCLUDED.properties, stamps = EXCLUDED.stamps, "
                             "version = EXCLUDED.version, client_id = EXCLUDED.client_id"};
inline const Statement kDeleteNodes{"batch_delete_nodes",
                             "DELETE FROM nodes n USING unnest($1::bigint[], $2::text[]) AS v (c, k) "
                             "WHERE n.channel_id = v.c AND n.node_id = v.k"};
inline const Statement kDeleteEdges{"batch_delete_edges",
                             "DELETE FROM edges e USING unnest($1::bigint[], $2::text[]) AS v (c, k) "
                             "WHERE e.channel_id = v.c AND e.edge_id = v.k"};
inline const Statement kUpsertPeers{"batch_upsert_peers",
                             "INSERT INTO crdt_peers (channel_id, site_id, version) SELECT * FROM "
                             "unnest($1::bigint[], $2::text[], $3::bigint[]) ON CONFLICT (channel_id, site_id) "
                             "DO UPDATE SET version = EXCLUDED.version, updated_at = now()"};
inline const Statement kHeads{"batch_heads",
                       "UPDATE channels SET head = v.head FROM unnest($1::bigint[], $2::bigint[]) AS v (id, head) "
                       "WHERE channels.id = v.id"};
// Delivered to listeners only if and when its transaction commits: one of
// its own, after the batch's (see Writes::send_notices).
inline const Statement kNotify{"batch_notify",
                        std::string("SELECT pg_notify('") + kHeadNotifyChannel + "', n) FROM unnest($1::text[]) AS n"};

}  // namespace syncd::store::batch_sql
