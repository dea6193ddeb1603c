#!/usr/bin/env bash
# Why syncd sends a batch's NOTIFY in a transaction of its own after the
# commit: PostgreSQL holds one database-wide lock from a notifying
# transaction's pre-commit to its end, WAL flush included, so commits that
# notify inside their transaction flush one after another. pgbench runs
# one small durable write per transaction, pipelined as syncd does, three
# ways (bench/notify/*.sql: NOTIFY inside, NOTIFY after, no NOTIFY) at
# 2, 4 and 8 concurrent committers (instances x --commit-threads), ROUNDS
# times alternately, and prints transactions/s of each.
#
#   bench/notify-lock.sh [ROUNDS] [SECONDS]     # defaults: 2 rounds of 5 s
#
# Needs a PostgreSQL at $SYNC_TEST_DATABASE_URL to create a database on.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/lib/common.sh"
: "${SYNC_TEST_DATABASE_URL:?set SYNC_TEST_DATABASE_URL to a PostgreSQL URL you can create databases on}"
rounds="${1:-2}" seconds="${2:-5}"
db="bench_notify_$$"
url="${SYNC_TEST_DATABASE_URL%/*}/$db"
trap 'psql "$SYNC_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1' EXIT
psql "$SYNC_TEST_DATABASE_URL" -qc "CREATE DATABASE $db"
psql "$url" -qc "CREATE TABLE writes (id bigserial PRIMARY KEY, body text)"
printf '%-10s %-7s %s\n' committers script tps
for clients in 2 4 8; do
  for round in $(seq "$rounds"); do
    for script in inside after none; do
      out="$("$PG_BIN/pgbench" -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$here/notify/$script.sql" "$url" 2>&1)" ||
        { echo "$out" >&2; exit 1; }
      tps="$(sed -n 's/^tps = \([0-9]*\).*/\1/p' <<<"$out")"
      printf '%-10s %-7s %s\n' "$clients" "$script" "$tps"
    done
  done
done
