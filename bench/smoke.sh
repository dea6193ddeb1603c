#!/usr/bin/env bash
# syncbench and its anchors, small and short, so that they cannot rot.
# Checks correctness (every patch accepted, versions gap-free), not speed.
# Run by scripts/test (through ctest), which provides the environment.
set -euo pipefail
: "${SYNC_TEST_DATABASE_URL:?run through scripts/test}" "${SYNCD_BIN:?}" "${SYNCBENCH_BIN:?}" "${SYNC_BRIDGE_BIN:?}"

name="bench_smoke_$$"
url="${SYNC_TEST_DATABASE_URL%/*}/$name"
log="$(mktemp)"
bridge_log="$(mktemp)"
relay_log="$(mktemp)"
sio_log="$(mktemp)"
cleanup() {
  [ -n "${relay_pid:-}" ] && kill -TERM "$relay_pid" 2>/dev/null && { wait "$relay_pid" 2>/dev/null || true; }
  [ -n "${sio_pid:-}" ] && kill -TERM "$sio_pid" 2>/dev/null && { wait "$sio_pid" 2>/dev/null || true; }
  [ -n "${bridge_pid:-}" ] && kill -TERM "$bridge_pid" 2>/dev/null && wait "$bridge_pid" 2>/dev/null
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  psql "$SYNC_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1
  rm -f "$log" "$bridge_log" "$relay_log" "$sio_log"
}
trap cleanup EXIT

# port_from LOG PHRASE: waits for "PHRASE <port>" in LOG and prints the port.
port_from() {
  local port=""
  for _ in $(seq 100); do
    port="$(sed -n "s/.*$2 \([0-9]*\).*/\1/p" "$1")"
    [ -n "$port" ] && { echo "$port"; return 0; }
    sleep 0.1
  done
  cat "$1" >&2
  return 1
}

psql "$SYNC_TEST_DATABASE_URL" -qc "CREATE DATABASE $name"
"$SYNCD_BIN" migrate up --database-url "$url" >/dev/null
"$SYNCD_BIN" serve --database-url "$url" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
port="$(port_from "$log" "serving gRPC on port")"

"$SYNCBENCH_BIN" push --smoke --server "127.0.0.1:$port"
"$SYNCBENCH_BIN" ingest-anchor --smoke --database-url "$url" --mode per-patch
"$SYNCBENCH_BIN" ingest-anchor --smoke --database-url "$url" --mode batched --json
"$SYNCBENCH_BIN" catchup --smoke --database-url "$url" --server "127.0.0.1:$port"
"$SYNCBENCH_BIN" join --smoke --database-url "$url" --server "127.0.0.1:$port"
"$(dirname "$0")/notify-lock.sh" 1 1

"$SYNC_BRIDGE_BIN" --listen 127.0.0.1:0 --upstream "127.0.0.1:$port" >"$bridge_log" 2>&1 &
bridge_pid=$!
bridge_port="$(port_from "$bridge_log" "listening on port")"
"$SYNCBENCH_BIN" idle --smoke --bridge "127.0.0.1:$bridge_port" --server "127.0.0.1:$port" --bridge-pid "$bridge_pid" --syncd-pid "$pid"
"$SYNCBENCH_BIN" idle --smoke --history 600 --database-url "$url" --bridge "127.0.0.1:$bridge_port" --server "127.0.0.1:$port" --bridge-pid "$bridge_pid" --syncd-pid "$pid"
"$SYNCBENCH_BIN" fanout --smoke --bridge "127.0.0.1:$bridge_port"
"$SYNCBENCH_BIN" idle --smoke --socketio --bridge "127.0.0.1:$bridge_port" --server "127.0.0.1:$port" --bridge-pid "$bridge_pid" --syncd-pid "$pid"
"$SYNCBENCH_BIN" fanout --smoke --socketio --bridge "127.0.0.1:$bridge_port"

# The fan-out baseline: the Node relay under the same load.
node "$(dirname "$0")/node-relay/relay.mjs" --port 0 >"$relay_log" 2>&1 &
relay_pid=$!
relay_port="$(port_from "$relay_log" "listening on port")"
"$SYNCBENCH_BIN" fanout --smoke --bridge "127.0.0.1:$relay_port"

# The Socket.IO baseline: the socket.io server (npm) relaying the same events.
node "$(dirname "$0")/socketio-relay/relay.mjs" --port 0 >"$sio_log" 2>&1 &
sio_pid=$!
sio_port="$(port_from "$sio_log" "listening on port")"
"$SYNCBENCH_BIN" fanout --smoke --socketio --bridge "127.0.0.1:$sio_port"

# Presence churn beside push, what presence costs alone, and /metrics scraped
# beside push: the drivers' short modes, each on a database and servers of
# its own (bench/presence needs npm install).
"$(dirname "$0")/presence.sh" --quick
"$(dirname "$0")/presence-cost.sh" --quick
"$(dirname "$0")/metrics-scrape.sh" --quick
# CPU per patch at the peak and paced below it.
"$(dirname "$0")/push-cost.sh" --quick
# push against syncd and etcd, one short pair (installs etcd-server if missing).
"$(dirname "$0")/etcd.sh" --quick
# Latency against offered load on both, two rates each, no plot.
"$(dirname "$0")/plot-latency.sh" --quick
# WebSocket fan-out with CPU per delivery, beside the Node relay.
"$(dirname "$0")/ws-fanout.sh" --quick
echo "1 passed, 0 failed"
