# Sourced by bench/presence.sh and bench/metrics-scrape.sh: a private
# database on the PostgreSQL at $SYNC_TEST_DATABASE_URL (scripts/test's, or
# any server you can create databases on), syncd and sync-bridge on it, all
# removed on exit; and what the machine did besides our processes during a
# run.
: "${SYNC_TEST_DATABASE_URL:?set SYNC_TEST_DATABASE_URL to a PostgreSQL URL}" "${SYNCD_BIN:?}" "${SYNC_BRIDGE_BIN:?}" "${SYNCBENCH_BIN:?}"

bench_tmp="$(mktemp -d)"
bench_extra_pids=()  # background helpers of the caller, stopped on exit

bench_cleanup() {
  local status=$?
  for p in "${bench_extra_pids[@]}"; do kill -TERM "$p" 2>/dev/null && { wait "$p" 2>/dev/null || true; }; done
  if [ "$status" -ne 0 ]; then
    echo "failed; the last lines of syncd's and sync-bridge's logs:" >&2
    tail -20 "$bench_tmp/syncd.log" "$bench_tmp/bridge.log" >&2 2>/dev/null || true
  fi
  [ -n "${bridge_pid:-}" ] && kill -TERM "$bridge_pid" 2>/dev/null && { wait "$bridge_pid" 2>/dev/null || true; }
  [ -n "${syncd_pid:-}" ] && kill -TERM "$syncd_pid" 2>/dev/null && { wait "$syncd_pid" 2>/dev/null || true; }
  [ -n "${bench_db:-}" ] && psql "$SYNC_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$bench_tmp"
  exit "$status"
}
trap bench_cleanup EXIT

# port_from LOG PHRASE: waits for "PHRASE <port>" in LOG and prints the port.
port_from() {
  local port=""
  for _ in $(seq 100); do
    port="$(sed -n "s/.*$2 \([0-9]*\).*/\1/p" "$1" | head -1)"
    [ -n "$port" ] && { echo "$port"; return 0; }
    sleep 0.1
  done
  cat "$1" >&2
  return 1
}

# start_servers NAME: a fresh database bench_NAME_<pid>, migrated; syncd
# (extra flags: $SYNCD_ARGS) and sync-bridge ($BRIDGE_ARGS) on it. Sets
# bench_url, syncd_pid, grpc_port, http_port, bridge_pid, bridge_port.
start_servers() {
  bench_db="bench_${1}_$$"
  bench_url="${SYNC_TEST_DATABASE_URL%/*}/$bench_db"
  psql "$SYNC_TEST_DATABASE_URL" -qc "CREATE DATABASE $bench_db"
  "$SYNCD_BIN" migrate up --database-url "$bench_url" >/dev/null
  "$SYNCD_BIN" serve --database-url "$bench_url" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    ${SYNCD_ARGS:-} >"$bench_tmp/syncd.log" 2>&1 &
  syncd_pid=$!
  grpc_port="$(port_from "$bench_tmp/syncd.log" "serving gRPC on port")"
  http_port="$(port_from "$bench_tmp/syncd.log" "HTTP on port")"
  "$SYNC_BRIDGE_BIN" --listen 127.0.0.1:0 --upstream "127.0.0.1:$grpc_port" --max-sockets-per-address 0 \
    ${BRIDGE_ARGS:-} >"$bench_tmp/bridge.log" 2>&1 &
  bridge_pid=$!
  bridge_port="$(port_from "$bench_tmp/bridge.log" "listening on port")"
  # PostgreSQL's postmaster, whose children (backends, checkpointer, WAL writer) count as ours.
  pg_pid="$(head -1 "$(psql "$bench_url" -tAc 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true)"
}

# stop_servers: ends start_servers' syncd and sync-bridge and drops its
# database (start_servers may then run again).
stop_servers() {
  kill -TERM "$bridge_pid" "$syncd_pid" 2>/dev/null || true
  wait "$bridge_pid" "$syncd_pid" 2>/dev/null || true
  psql "$SYNC_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)" >/dev/null
  bridge_pid="" syncd_pid="" bench_db=""
}

# start_etcd: a single-member etcd on loopback with its defaults (fsync
# on), its data in $bench_tmp; Debian's etcd-server is installed when etcd
# is missing. Sets etcd_client (host:port) and etcd_pid.
start_etcd() {
  if ! command -v etcd >/dev/null; then
    echo "# etcd is missing: installing Debian's etcd-server" >&2
    local sudo=""
    [ "$(id -u)" != 0 ] && sudo=sudo
    $sudo apt-get install -y etcd-server >&2 ||
      { echo "could not install etcd-server; install it (apt-get install etcd-server) or put etcd on PATH" >&2; exit 2; }
  fi
  local free_port='import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  local peer
  etcd_client="127.0.0.1:$(python3 -c "$free_port")"
  peer="127.0.0.1:$(python3 -c "$free_port")"
  mkdir "$bench_tmp/etcd"
  etcd --name bench --data-dir "$bench_tmp/etcd/data" \
    --listen-client-urls "http://$etcd_client" --advertise-client-urls "http://$etcd_client" \
    --listen-peer-urls "http://$peer" --initial-advertise-peer-urls "http://$peer" \
    --initial-cluster "bench=http://$peer" --log-outputs stderr >"$bench_tmp/etcd.log" 2>&1 &
  etcd_pid=$!
  bench_extra_pids+=("$etcd_pid")
  for _ in $(seq 100); do
    grep -q '"health":"true"' <<<"$(curl -fs "http://$etcd_client/health")" && return 0
    kill -0 "$etcd_pid" 2>/dev/null || { echo "etcd exited; its log:" >&2; tail -20 "$bench_tmp/etcd.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "etcd at $etcd_client is not healthy after 10 s; its log:" >&2
  tail -20 "$bench_tmp/etcd.log" >&2
  exit 1
}

# Warnings and errors the servers logged (one JSON object), leaving out the
# notice that authentication is off.
log_problems() {
  node -e '
    const fs = require("fs");
    const out = {};
    for (const [name, file] of [["syncd", process.argv[1]], ["bridge", process.argv[2]]]) {
      const lines = fs.readFileSync(file, "utf8").split("\n")
        .filter((l) => /\[(warning|error|critical)\]/.test(l) && !/AUTHENTICATION IS OFF/.test(l));
      const kinds = {};
      for (const l of lines) {
        const k = l.replace(/^\[[^\]]*\] /, "").replace(/[0-9a-f]{16}\.[0-9.]+|\d+/g, "N").slice(0, 160);
        kinds[k] = (kinds[k] || 0) + 1;
      }
      out[name] = { lines: lines.length, kinds };
    }
    console.log(JSON.stringify(out));
  ' "$bench_tmp/syncd.log" "$bench_tmp/bridge.log"
}

# wait_quiet [LOAD] [MAX_SECONDS]: waits until the 1-minute load average is
# under LOAD (default 1), at most MAX_SECONDS (default 1200), so that a
# measured pass does not start while something else is running.
wait_quiet() {
  local limit="${1:-1}" max="${2:-1200}" waited=0 load
  while :; do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    awk -v l="$load" -v m="$limit" 'BEGIN { exit !(l < m) }' && { echo "# load average $load" >&2; return 0; }
    [ "$waited" -ge "$max" ] && { echo "# load average still $load after ${max} s; going on" >&2; return 0; }
    [ $((waited % 60)) -eq 0 ] && echo "# load average $load: waiting for < $limit" >&2
    sleep 10
    waited=$((waited + 10))
  done
}

# CPU of the machine against ours over a run. cpu_mark [PID...] before it,
# cpu_other [PID...] after it (the same extra PIDs: helpers still running)
# prints {"wall_s", "busy_s", "syncd_s", "bridge_s", "postgres_s",
# "helpers_s", "children_s", "other_s"}: the run's time, the machine's busy
# CPU seconds (at most 2 a second on 2 cores), syncd's, the bridge's,
# PostgreSQL's (the postmaster and its children, when its data directory is
# readable; backends that exit during the run are missed), the PIDs
# given, the children this shell waited for (syncbench), and the rest:
# other_s well above zero means something else ran beside the benchmark.
_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
_ticks_sum() {
  local sum=0 t
  for p in "$@"; do t="$(_ticks "$p")"; sum=$((sum + ${t:-0})); done
  echo "$sum"
}
_cpu_now() {
  local pg=""
  [ -n "${pg_pid:-}" ] && pg="$pg_pid $(pgrep -P "$pg_pid" | tr '\n' ' ')"
  echo "$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat)" \
    "$(_ticks "$syncd_pid")" "$(_ticks "$bridge_pid")" "$(_ticks_sum $pg)" "$(_ticks_sum "$@")" \
    "$(sed 's/^.*) //' "/proc/$$/stat" | awk '{ print $14 + $15 }')" "$(date +%s%N)"
}
cpu_mark() { _cpu_mark="$(_cpu_now "$@")"; }
cpu_other() {
  echo "$_cpu_mark $(_cpu_now "$@") $(getconf CLK_TCK)" | awk '{
    hz = $15
    for (i = 1; i <= 6; i++) d[i] = ($(i + 7) - $i) / hz
    other = d[1] - d[2] - d[3] - d[4] - d[5] - d[6]
    if (other < 0) other = 0
    printf "{\"wall_s\": %.2f, \"busy_s\": %.2f, \"syncd_s\": %.2f, \"bridge_s\": %.2f, \"postgres_s\": %.2f, \"helpers_s\": %.2f, \"children_s\": %.2f, \"other_s\": %.2f}\n",
      ($14 - $7) / 1e9, d[1], d[2], d[3], d[4], d[5], d[6], other
  }'
}

# The A side of an A/B pass: `syncbench push` alone on fresh channels,
# after a CHECKPOINT, its CPU recorded. Uses $server, $push_flags, $runs
# and $bench_url, set by the driver.
push() { "$SYNCBENCH_BIN" push --server "$server" --channel-prefix "$1-" --json "${push_flags[@]}"; }

run_a() {
  psql "$bench_url" -qc CHECKPOINT
  cpu_mark
  local out
  out="$(push "a$1")" || { echo "push failed: $out" >&2; return 1; }
  echo "{\"run\": \"A$1\", \"push\": $out, \"cpu\": $(cpu_other)}" | tee -a "$runs"
}

# A B A B … A: PAIRS B runs, each between two A runs (run_b is the driver's).
run_pairs() {
  run_a 1
  for i in $(seq "$1"); do
    run_b "$i"
    run_a $((i + 1))
  done
}
