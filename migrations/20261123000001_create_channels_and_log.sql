-- migrate:up
-- One row per channel. `head` is the last version assigned; a writer takes
-- this row FOR UPDATE before assigning versions, so every syncd instance
-- sharing the database hands out head+1, head+2, ... with no gap or reuse.
CREATE TABLE channels (
  id              bigserial PRIMARY KEY,
  name            text NOT NULL UNIQUE
                    CHECK (name ~ '^[A-Za-z0-9._:-]{1,128}$'),
  head            bigint NOT NULL DEFAULT 0 CHECK (head >= 0),
  conflict_policy text NOT NULL DEFAULT 'last_writer_wins'
                    CHECK (conflict_policy IN ('last_writer_wins', 'reject_stale')),
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- The change log. `body` is the patch exactly as its sender wrote it,
-- encoded as a sync.v1.Patch message without server_version.
CREATE TABLE patches (
  channel_id   bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  version      bigint NOT NULL CHECK (version > 0),
  patch_id     text   NOT NULL,
  client_id    text   NOT NULL,
  op           text   NOT NULL,
  body         bytea  NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel_id, version),
  -- At most once per patch id, enforced by the database itself.
  UNIQUE (channel_id, patch_id)
);

-- migrate:down
DROP TABLE patches;
DROP TABLE channels;
