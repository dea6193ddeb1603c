-- The anchor: the same write, announced to nobody.
\startpipeline
BEGIN;
INSERT INTO writes (body) VALUES ('patch');
COMMIT;
\endpipeline
