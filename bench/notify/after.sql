-- What syncd does: the write commits, then a transaction of its own, not
-- waiting for its flush, announces it; both in one pipelined round trip.
\startpipeline
BEGIN;
INSERT INTO writes (body) VALUES ('patch');
COMMIT;
BEGIN;
SET LOCAL synchronous_commit TO off;
SELECT pg_notify('bench_heads', 'instance\nchannel 1');
COMMIT;
\endpipeline
