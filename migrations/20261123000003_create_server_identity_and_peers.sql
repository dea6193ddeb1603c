-- migrate:up
-- The service's stable id, shared by every syncd on this database and kept
-- across restarts (CRDT relay clients know the server by it).
CREATE TABLE server_identity (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  site_id text NOT NULL
);
INSERT INTO server_identity (site_id) VALUES (replace(gen_random_uuid()::text, '-', ''));

-- The latest version stored from each CRDT replica, per channel.
CREATE TABLE crdt_peers (
  channel_id bigint      NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  site_id    text        NOT NULL,
  version    bigint      NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel_id, site_id)
);

-- migrate:down
DROP TABLE crdt_peers;
DROP TABLE server_identity;
