-- migrate:up
-- Which transaction last wrote each presence row, so an instance re-reads
-- only the rows written since its last read of a channel (those of
-- transactions its last snapshot could not see: xid >= that snapshot's
-- xmin), not the whole channel every round. Leaves show as a smaller count.
ALTER TABLE presence ADD COLUMN written_by xid8 NOT NULL DEFAULT pg_current_xact_id();

-- migrate:down
ALTER TABLE presence DROP COLUMN written_by;
