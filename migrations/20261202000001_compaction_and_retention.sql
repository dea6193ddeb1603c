-- migrate:up
-- The log's horizon and each channel's retention. The log holds versions
-- (compacted_through, head]; the state tables still hold the fold of all
-- of them. Retention keeps a patch while it is among the newest
-- retain_versions or younger than retain_seconds (0: that rule is off;
-- both off keeps everything; NULL: syncd's --retain-* defaults).
ALTER TABLE channels
  ADD COLUMN compacted_through bigint NOT NULL DEFAULT 0 CHECK (compacted_through >= 0),
  ADD COLUMN retain_versions   bigint CHECK (retain_versions >= 0),
  ADD COLUMN retain_seconds    bigint CHECK (retain_seconds >= 0),
  ADD CONSTRAINT channels_horizon_le_head CHECK (compacted_through <= head);

-- The ids of compacted patches, so a resent one is still answered `ignored`
-- with its version after its log row is gone. Rows older than syncd's
-- --dedup-window are dropped by the compactor.
CREATE TABLE compacted_ids (
  channel_id   bigint      NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  patch_id     text        NOT NULL,
  version      bigint      NOT NULL,
  committed_at timestamptz NOT NULL,
  PRIMARY KEY (channel_id, patch_id)
);
CREATE INDEX compacted_ids_age ON compacted_ids (committed_at);

-- Finds the opaque (CRDT) patches a compaction would drop; only they are
-- indexed, so graph-only channels pay nothing for it.
CREATE INDEX patches_opaque ON patches (channel_id, version) WHERE op = 'opaque';

-- migrate:down
DROP INDEX patches_opaque;
DROP TABLE compacted_ids;
ALTER TABLE channels
  DROP CONSTRAINT channels_horizon_le_head,
  DROP COLUMN retain_seconds,
  DROP COLUMN retain_versions,
  DROP COLUMN compacted_through;
