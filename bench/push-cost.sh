#!/usr/bin/env bash
# What a patch costs at each load: on fresh servers, `syncbench push` at its
# peak, then paced at each of RATES (patches/s; "half" is half of that
# round's peak). Each run prints the CPU seconds syncd, PostgreSQL and
# syncbench (the load generator, on the same cores) spent per accepted
# patch, the machine's context switches per patch, how many of its cores
# were busy, and the ack latency; after ROUNDS rounds, the medians per load.
#
#   bench/push-cost.sh [--quick] [ROUNDS]     # ROUNDS: default 3
#
# Environment: RATES ("1000 4000 8000 half"), PUSH_FLAGS (extra flags for
# every run), QUIET_LOAD (1: wait for the 1-minute load average to fall
# under this first, at most QUIET_MAX seconds, default 1200; 0: do not wait).
# --quick: one round of short runs, no waiting; bench/smoke.sh runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
rounds="${1:-3}"
rates="${RATES:-1000 4000 8000 half}"
read -r -a extra <<<"${PUSH_FLAGS:-}"
source "$here/servers.sh"
if [ "$quick" = 1 ]; then
  rounds=1 rates="200 half" extra+=(--duration-ms 1000 --warmup-ms 300)
elif [ "${QUIET_LOAD:-1}" != 0 ]; then
  wait_quiet "${QUIET_LOAD:-1}" "${QUIET_MAX:-1200}"
fi
runs="$bench_tmp/runs.jsonl"
switches() { awk '/^ctxt/ { print $2 }' /proc/stat; }

# measure LABEL FLAGS...: one push on fresh channels, with its CPU.
measure() {
  local label="$1" out before
  shift
  before="$(switches)"
  cpu_mark
  out="$("$SYNCBENCH_BIN" push --server "127.0.0.1:$grpc_port" --channel-prefix "$label-$round-" --json \
    "${extra[@]}" "$@")" || { echo "push failed: $out" >&2; return 1; }
  echo "{\"round\": $round, \"load\": \"$label\", \"push\": $out, \"cpu\": $(cpu_other), \"switches\": $(($(switches) - before))}" |
    tee -a "$runs"
}

for round in $(seq "$rounds"); do
  start_servers cost
  echo "# round $round of $rounds: syncd at 127.0.0.1:$grpc_port" >&2
  measure peak
  peak="$(tail -1 "$runs" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).push.accepted_per_s)')"
  for load in $rates; do
    rate="$load"
    [ "$load" = half ] && rate=$((${peak%.*} / 2 > 0 ? ${peak%.*} / 2 : 1))
    measure "$load" --rate "$rate" --window 256
  done
  stop_servers
done

node -e '
  const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const us = (s, n) => Math.round((1e6 * s) / n);
  const loads = [...new Set(runs.map((r) => r.load))];
  const rows = loads.map((load) => {
    const rs = runs.filter((r) => r.load === load).map((r) => {
      const n = r.push.accepted_total;
      return { offered: r.push.parameters.rate, accepted: r.push.accepted_per_s,
               syncd: us(r.cpu.syncd_s, n), postgres: us(r.cpu.postgres_s, n), syncbench: us(r.cpu.children_s, n),
               all: us(r.cpu.syncd_s + r.cpu.postgres_s + r.cpu.children_s, n),
               switches: +(r.switches / n).toFixed(1), busy_cores: +(r.cpu.busy_s / r.cpu.wall_s).toFixed(2),
               other_s: r.cpu.other_s, p50: r.push.ack_ms.p50, p99: r.push.ack_ms.p99 };
    });
    const m = (k) => median(rs.map((r) => r[k]));
    return { load, rounds: rs.length, offered_per_s: rs.map((r) => r.offered), accepted_per_s: m("accepted"),
             cpu_us_per_patch: { syncd: m("syncd"), postgres: m("postgres"), syncbench: m("syncbench"), all: m("all") },
             context_switches_per_patch: m("switches"), busy_cores: m("busy_cores"),
             ack_ms: { p50: m("p50"), p99: m("p99"), p99_each: rs.map((r) => r.p99) },
             other_cpu_s: rs.map((r) => r.other_s) };
  });
  console.log(JSON.stringify({ summary: "push: CPU per accepted patch at each load (medians)", rows }, null, 1));
' "$runs"
