#!/usr/bin/env bash
# What presence costs the servers: bench/presence/churn.mjs alone (no push)
# through sync-bridge to one syncd, RUNS times, each printing the CPU
# seconds syncd, the bridge and PostgreSQL spent over the run (the machine's
# other CPU too, to show nothing else ran), with the joins and state updates
# the churn offered and join -> seen-by-the-observer latency; then the
# medians, and the servers' CPU per thousand presence operations (joins +
# leaves + updates).
#
#   bench/presence-cost.sh [--quick] [RUNS]     # RUNS: default 3
#
# Environment: CONNECTIONS (1000), RATE (10 updates/s each), LIFETIME (3 s),
# SECONDS_EACH (10), SUBSCRIBE (0: only the observer subscribes),
# QUIET_LOAD (1: wait for the 1-minute load average to fall under this
# first, at most QUIET_MAX seconds, default 1200; 0: do not wait).
# --quick: one short run of 100 connections, no waiting, and a failed check
# fails the script; bench/smoke.sh runs it.
# Needs `npm install` in bench/presence (for `ws`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
runs_wanted="${1:-3}"
[ -d "$here/presence/node_modules/ws" ] || { echo "run npm install in bench/presence first" >&2; exit 2; }
source "$here/servers.sh"
if [ "$quick" = 1 ]; then
  runs_wanted=1 CONNECTIONS=100 SECONDS_EACH=2 LIFETIME=1.5
elif [ "${QUIET_LOAD:-1}" != 0 ]; then
  wait_quiet "${QUIET_LOAD:-1}" "${QUIET_MAX:-1200}"
fi
start_servers cost
echo "# presence cost: sync-bridge ws://127.0.0.1:$bridge_port, $runs_wanted runs" >&2
runs="$bench_tmp/runs.jsonl"
for i in $(seq "$runs_wanted"); do
  cpu_mark
  out="$(node "$here/presence/churn.mjs" --url "ws://127.0.0.1:$bridge_port" --connections "${CONNECTIONS:-1000}" \
    --rate "${RATE:-10}" --lifetime "${LIFETIME:-3}" --subscribe "${SUBSCRIBE:-0}" --seconds "${SECONDS_EACH:-10}" | tail -1)"
  echo "{\"run\": $i, \"churn\": $out, \"cpu\": $(cpu_other)}" | tee -a "$runs"
  if [ "$quick" = 1 ] && ! grep -q '"checks":"ok"' <<<"$out"; then echo "the churn's checks failed" >&2; exit 1; fi
done
node -e '
  const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const per = runs.map((r) => {
    const c = r.churn, seconds = r.cpu.wall_s;
    // Each socket opened once joins and leaves once; updates as sent.
    const ops = (2 * c.churners.openedPerSec + c.churners.updatesSentPerSec) * c.measuredS;
    const servers = r.cpu.syncd_s + r.cpu.bridge_s + r.cpu.postgres_s;
    return { ops, syncd: r.cpu.syncd_s, bridge: r.cpu.bridge_s, postgres: r.cpu.postgres_s, other: r.cpu.other_s,
             servers_ms_per_1000_ops: (1e6 * servers) / ops, join_seen_p99: c.joinSeenMs.p99, seconds };
  });
  console.log(JSON.stringify({
    summary: "presence churn alone: what it costs the servers",
    cpu_s: { syncd: median(per.map((p) => p.syncd)), bridge: median(per.map((p) => p.bridge)),
             postgres: median(per.map((p) => p.postgres)), other: per.map((p) => p.other) },
    servers_cpu_ms_per_1000_ops: median(per.map((p) => p.servers_ms_per_1000_ops)),
    join_seen_p99_ms: per.map((p) => p.join_seen_p99),
  }, null, 1));
' "$runs"
