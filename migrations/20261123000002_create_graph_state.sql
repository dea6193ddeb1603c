-- migrate:up
-- The materialized graph: the fold of each channel's log. `version` and
-- `client_id` say who last changed the element; `stamps` holds the same per
-- property key ({"key": [version, "client"]}, kept after a removal) so the
-- reject_stale policy can tell which properties another client changed.
CREATE TABLE nodes (
  channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  node_id    text   NOT NULL,
  label      text   NOT NULL,
  properties jsonb  NOT NULL DEFAULT '{}',
  stamps     jsonb  NOT NULL DEFAULT '{}',
  version    bigint NOT NULL,
  client_id  text   NOT NULL,
  PRIMARY KEY (channel_id, node_id)
);

CREATE TABLE edges (
  channel_id   bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  edge_id      text   NOT NULL,
  label        text   NOT NULL,
  from_node_id text   NOT NULL,
  to_node_id   text   NOT NULL,
  properties   jsonb  NOT NULL DEFAULT '{}',
  stamps       jsonb  NOT NULL DEFAULT '{}',
  version      bigint NOT NULL,
  client_id    text   NOT NULL,
  PRIMARY KEY (channel_id, edge_id)
);

-- Deleting a node deletes its edges: these find them.
CREATE INDEX edges_from_node ON edges (channel_id, from_node_id);
CREATE INDEX edges_to_node ON edges (channel_id, to_node_id);

-- migrate:down
DROP TABLE edges;
DROP TABLE nodes;
