-- A commit that announces itself inside its own transaction (syncd before
-- the change): the NOTIFY lock is held through the WAL flush.
\startpipeline
BEGIN;
INSERT INTO writes (body) VALUES ('patch');
SELECT pg_notify('bench_heads', 'instance\nchannel 1');
COMMIT;
\endpipeline
