#!/usr/bin/env bash
# WebSocket fan-out through sync-bridge beside the Node relay (the original
# in-memory design, bench/node-relay), alternately (A = bridge, B = relay)
# with the same `syncbench fanout` flags, each run printing syncbench's
# JSON and the CPU seconds of the bridge, of syncd + PostgreSQL and of the
# relay over the run; then per pair deliveries/s, latency and CPU per
# delivery, with bridge ÷ relay ratios (median, min and max over the pairs).
#
#   bench/ws-fanout.sh [--quick] [PAIRS]     # PAIRS: default 3
#
# Environment: FANOUT_FLAGS (default "--readers 1000 --writers 4 --rate 300
# --duration-ms 10000"), QUIET_LOAD (1: wait for the 1-minute load average
# to fall under this first, at most QUIET_MAX seconds, default 1200; 0: do
# not wait). --quick: one pair with --smoke, no waiting; a failed check
# fails the script. Needs `npm install` in bench/node-relay.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
pairs="${1:-3}"
[ -d "$here/node-relay/node_modules/ws" ] || { echo "run npm install in bench/node-relay first" >&2; exit 2; }
source "$here/servers.sh"
if [ "$quick" = 1 ]; then
  pairs=1 fanout_flags=(--smoke)
else
  read -ra fanout_flags <<<"${FANOUT_FLAGS:---readers 1000 --writers 4 --rate 300 --duration-ms 10000}"
  [ "${QUIET_LOAD:-1}" != 0 ] && wait_quiet "${QUIET_LOAD:-1}" "${QUIET_MAX:-1200}"
fi
ulimit -n 65536 2>/dev/null || true

start_servers wsfanout
node "$here/node-relay/relay.mjs" --port 0 >"$bench_tmp/relay.log" 2>&1 &
relay_pid=$!
bench_extra_pids+=("$relay_pid")
relay_port="$(port_from "$bench_tmp/relay.log" "listening on port")"
echo "# sync-bridge 127.0.0.1:$bridge_port, Node relay 127.0.0.1:$relay_port, $pairs pairs; fanout ${fanout_flags[*]}" >&2

runs="$bench_tmp/runs.jsonl"
# run NAME TARGET PORT: one fanout run against PORT, its CPU recorded.
run() {
  cpu_mark "$relay_pid"
  local out
  out="$("$SYNCBENCH_BIN" fanout --bridge "127.0.0.1:$3" --channel-prefix "$1-" --json "${fanout_flags[@]}")" ||
    { echo "fanout against $2 failed: $out" >&2; return 1; }
  echo "{\"run\": \"$1\", \"target\": \"$2\", \"result\": $out, \"cpu\": $(cpu_other "$relay_pid" | sed 's/"helpers_s"/"relay_s"/')}" |
    tee -a "$runs"
}
for i in $(seq "$pairs"); do
  run "A$i" bridge "$bridge_port"
  run "B$i" relay "$relay_port"
done
node - "$runs" <<'JS'
const runs = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const r2 = (x) => Math.round(x * 100) / 100;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => ({ median: r2(median(xs)), min: r2(Math.min(...xs)), max: r2(Math.max(...xs)) });
const us = (s, r) => (1e6 * s) / Math.max(r.result.deliveries, 1);
const pairs = [];
for (let i = 0; i + 1 < runs.length; i += 2) {
  const [a, b] = [runs[i], runs[i + 1]];
  pairs.push({
    bridge_per_s: a.result.deliveries_per_s, relay_per_s: b.result.deliveries_per_s,
    throughput: a.result.deliveries_per_s / b.result.deliveries_per_s,
    bridge_p50_ms: a.result.latency_ms.p50, bridge_p99_ms: a.result.latency_ms.p99,
    relay_p50_ms: b.result.latency_ms.p50, relay_p99_ms: b.result.latency_ms.p99,
    bridge_us_per_delivery: r2(us(a.cpu.bridge_s, a)),
    syncd_pg_us_per_delivery: r2(us(a.cpu.syncd_s + a.cpu.postgres_s, a)),
    relay_us_per_delivery: r2(us(b.cpu.relay_s, b)),
    complete: a.result.readers_complete_in_order === a.result.parameters.readers &&
      b.result.readers_complete_in_order === b.result.parameters.readers,
  });
}
const summary = {
  pairs,
  throughput_bridge_over_relay: spread(pairs.map((p) => p.throughput)),
  bridge_us_per_delivery: spread(pairs.map((p) => p.bridge_us_per_delivery)),
  relay_us_per_delivery: spread(pairs.map((p) => p.relay_us_per_delivery)),
  bridge_p99_ms: spread(pairs.map((p) => p.bridge_p99_ms)),
  all_complete: pairs.every((p) => p.complete),
};
console.log(JSON.stringify(summary, null, 1));
if (!summary.all_complete) process.exitCode = 1;
JS
