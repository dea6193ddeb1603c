-- migrate:up
-- Presence: who is connected to which channel, on every syncd instance.
-- Each instance writes its own connections' rows and refreshes its
-- heartbeat; any instance deletes the rows of an instance whose heartbeat
-- is older than that instance's --presence-ttl (it died), and NOTIFY sync_presence tells
-- the others to re-read a channel. Unlogged: presence is about now, so it
-- costs no WAL, and after a database crash the live instances write their
-- rows again.
CREATE UNLOGGED TABLE presence_instances (
  instance_id text        PRIMARY KEY,
  seen_at     timestamptz NOT NULL DEFAULT now(),
  ttl_seconds integer     NOT NULL  -- the instance's own --presence-ttl
);

CREATE UNLOGGED TABLE presence (
  channel       text        NOT NULL,
  connection_id text        NOT NULL,
  instance_id   text        NOT NULL,
  client_id     text        NOT NULL DEFAULT '',
  subject       text        NOT NULL DEFAULT '',
  transport     text        NOT NULL,
  connected_at  timestamptz NOT NULL,
  state         jsonb       NOT NULL DEFAULT '{}',
  delivered     bigint      NOT NULL DEFAULT 0,
  applied       bigint      NOT NULL DEFAULT 0,
  PRIMARY KEY (channel, connection_id)
);
CREATE INDEX presence_instance ON presence (instance_id);

-- The last position of each named client (OpenChannel.client_id), kept
-- across reconnects and restarts: the version last delivered to it and
-- the last it said it applied. Forgotten 30 days after it was last seen.
CREATE TABLE client_positions (
  channel    text        NOT NULL,
  client_id  text        NOT NULL,
  delivered  bigint      NOT NULL DEFAULT 0,
  applied    bigint      NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel, client_id)
);
CREATE INDEX client_positions_age ON client_positions (updated_at);

-- migrate:down
DROP TABLE client_positions;
DROP TABLE presence;
DROP TABLE presence_instances;
