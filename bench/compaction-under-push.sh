#!/usr/bin/env bash
# Compaction of a long log while syncbench push runs at full speed: push
# throughput and ack p99 with and without a compaction running, alternately
# (A B A B), on a private database of the PostgreSQL at $SYNC_TEST_DATABASE_URL
# (scripts/test's, or any server you can create databases on).
#
#   bench/compaction-under-push.sh [ROWS] [PUSH_SECONDS] [RATE]
#
# ROWS (default 1000000) log rows are written straight to a channel; each
# B run compacts one such channel with `syncctl compact` while push runs.
# RATE (default 0: as fast as the window allows) is push's offered patches/s.
set -euo pipefail
: "${SYNC_TEST_DATABASE_URL:?set SYNC_TEST_DATABASE_URL to a PostgreSQL URL}" "${SYNCD_BIN:?}" "${SYNCBENCH_BIN:?}" "${SYNCCTL_BIN:?}"
rows="${1:-1000000}"
seconds="${2:-10}"
rate="${3:-0}"
name="bench_compaction_$$"
url="${SYNC_TEST_DATABASE_URL%/*}/$name"
log="$(mktemp)"
cleanup() {
  status=$?
  [ "$status" -ne 0 ] && { echo "failed; syncd's log:" >&2; tail -20 "$log" >&2; }
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  psql "$SYNC_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1
  rm -f "$log"
}
trap cleanup EXIT

psql "$SYNC_TEST_DATABASE_URL" -qc "CREATE DATABASE $name"
"$SYNCD_BIN" migrate up --database-url "$url" >/dev/null
"$SYNCD_BIN" serve --database-url "$url" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 ${SYNCD_ARGS:-} >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  port="$(sed -n 's/.*serving gRPC on port \([0-9]*\).*/\1/p' "$log")"
  [ -n "$port" ] && break
  sleep 0.1
done
server="127.0.0.1:$port"

# A channel of $rows versions (compaction never reads the bodies).
fill() {
  echo "filling $1 with $rows rows..." >&2
  psql "$url" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO channels (name, head) VALUES ('$1', $rows);
INSERT INTO patches (channel_id, version, patch_id, client_id, op, body)
  SELECT (SELECT id FROM channels WHERE name = '$1'), g, 'p' || g, 'bench', 'create_node', '\\x0a0170'::bytea
  FROM generate_series(1, $rows) AS g;
SQL
}
fill old-1
fill old-2
psql "$url" -qc "VACUUM ANALYZE"
before="$(psql "$url" -tAc "SELECT pg_total_relation_size('patches') + pg_total_relation_size('compacted_ids')")"

push() { "$SYNCBENCH_BIN" push --server "$server" --duration "${seconds}000" --rate "$rate" --json; }
for i in 1 2; do
  echo "A$i: push alone" >&2
  a="$(push)"
  echo "B$i: push while compacting old-$i" >&2
  start=$(date +%s%N)
  "$SYNCCTL_BIN" compact "old-$i" --through "$rows" --server "$server" >/dev/null &
  compact_pid=$!
  b="$(push)"
  wait "$compact_pid"
  took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  node -e '
    const [a, b, took, rows] = [JSON.parse(process.argv[1]), JSON.parse(process.argv[2]), +process.argv[3], +process.argv[4]];
    const r = (x) => Math.round(x * 100) / 100;
    console.log(JSON.stringify({ run: process.argv[5], alone: { accepted_per_s: a.accepted_per_s, ack_p99_ms: a.ack_ms.p99 },
      compacting: { accepted_per_s: b.accepted_per_s, ack_p99_ms: b.ack_ms.p99 },
      throughput_ratio: r(b.accepted_per_s / a.accepted_per_s), p99_ratio: r(b.ack_ms.p99 / a.ack_ms.p99),
      compaction_s: r(took), compaction_rows_per_s: Math.round(rows / took) }));
  ' "$a" "$b" "$((took_ms / 1000)).$(printf %03d $((took_ms % 1000)))" "$rows" "$i"
done
after="$(psql "$url" -tAc "SELECT pg_total_relation_size('patches') + pg_total_relation_size('compacted_ids')")"
echo "{\"log_and_id_bytes_before\": $before, \"after\": $after}"
