#!/usr/bin/env bash
# What /metrics costs: `syncbench push` straight to syncd, with (B) and
# without (A) a scraper GETting syncd's and sync-bridge's /metrics once a
# second, as Prometheus would (bench/metrics-scraper.mjs, connections kept
# alive). Runs alternate A B A B … A (PAIRS B runs, each between two A
# runs) on a private database of the PostgreSQL at $SYNC_TEST_DATABASE_URL,
# one syncd and one sync-bridge for the whole pass. First, on the idle
# servers, SCRAPES scrapes of each endpoint back to back give the CPU one
# scrape costs each process. Prints one JSON line per run, then a summary.
#
#   bench/metrics-scrape.sh [--quick] [PAIRS]     # PAIRS: default 5
#
# Environment: PUSH_SECONDS (10; push also warms up 2 s first), PUSH_ARGS,
# SYNCD_ARGS, BRIDGE_ARGS, SCRAPES (1000), QUIET_LOAD (1: wait for the
# 1-minute load average to fall under this before the first run, at most
# QUIET_MAX seconds, default 1200; 0: do not wait). --quick: one pair, short runs, 50 idle scrapes, no waiting; a
# failed push or scrape fails the script; bench/smoke.sh runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
pairs="${1:-5}"
source "$here/servers.sh"

if [ "$quick" = 1 ]; then
  pairs=1
  scrapes=50
  push_flags=(--streams 8 --duration-ms 2000 --warmup-ms 500)
else
  scrapes="${SCRAPES:-1000}"
  push_flags=(--duration-ms "$(( ${PUSH_SECONDS:-10} * 1000 ))")
fi
push_flags+=(${PUSH_ARGS:-})

start_servers metrics
server="127.0.0.1:$grpc_port"
urls=("http://127.0.0.1:$http_port/metrics" "http://127.0.0.1:$bridge_port/metrics")
runs="$bench_tmp/runs.jsonl"
: >"$runs"
[ "$quick" = 0 ] && [ "${QUIET_LOAD:-1}" != 0 ] && wait_quiet "${QUIET_LOAD:-1}" "${QUIET_MAX:-1200}"

# The CPU (user + system) of one scrape, for each process, on idle servers.
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
idle_cost() {
  local pid="$1" url="$2" before after out
  before="$(ticks "$pid")"
  out="$(node "$here/metrics-scraper.mjs" --burst "$scrapes" "$url")"
  after="$(ticks "$pid")"
  node -e '
    const [out, ticks, n, hz] = [JSON.parse(process.argv[1]), +process.argv[2], +process.argv[3], +process.argv[4]];
    const s = Object.values(out)[0];
    console.log(JSON.stringify({ scrapes: n, cpu_ms_per_scrape: Math.round(ticks / hz * 1000 / n * 1000) / 1000,
      ms_p50: s.ms_p50, ms_max: s.ms_max, bytes: s.bytes }));
  ' "$out" "$((after - before))" "$scrapes" "$(getconf CLK_TCK)"
}
idle="{\"syncd\": $(idle_cost "$syncd_pid" "${urls[0]}"), \"bridge\": $(idle_cost "$bridge_pid" "${urls[1]}")}"
echo "{\"idle_scrape_cost\": $idle}"


run_b() {
  psql "$bench_url" -qc CHECKPOINT
  node "$here/metrics-scraper.mjs" --every 1000 "${urls[@]}" >"$bench_tmp/scrape.out" 2>&1 &
  local scraper=$! out status=0 cpu
  bench_extra_pids=("$scraper")
  cpu_mark "$scraper"
  out="$(push "b$1")" || { echo "push failed: $out" >&2; status=1; }
  cpu="$(cpu_other "$scraper")"
  kill -TERM "$scraper" 2>/dev/null || true
  wait "$scraper" || { echo "a scrape failed: $(cat "$bench_tmp/scrape.out")" >&2; status=1; }
  bench_extra_pids=()
  [ "$status" = 0 ] || return 1
  echo "{\"run\": \"B$1\", \"push\": $out, \"scraper\": $(cat "$bench_tmp/scrape.out"), \"cpu\": $cpu}" | tee -a "$runs"
}

echo "# /metrics scraped once a second beside push: syncd gRPC $server, $pairs pairs" >&2
run_pairs "$pairs"

node -e '
  const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const A = runs.filter((r) => r.run[0] === "A"), B = runs.filter((r) => r.run[0] === "B");
  const median = (v) => { const s = [...v].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
  const r3 = (x) => Math.round(x * 1000) / 1000;
  const pairs = B.map((b, i) => {
    const around = (A[i].push.accepted_per_s + A[i + 1].push.accepted_per_s) / 2;
    return { run: b.run, alone_around: Math.round(around), scraped: b.push.accepted_per_s, ratio: r3(b.push.accepted_per_s / around),
      scrapes: Object.values(b.scraper).map((s) => s.scrapes) };
  });
  const ratios = pairs.map((p) => p.ratio);
  // How far apart A runs next to each other are: the noise the ratio sits in.
  const aSteps = A.slice(1).map((a, i) => r3(a.push.accepted_per_s / A[i].push.accepted_per_s));
  const summary = {
    summary: "/metrics scraped once a second beside push",
    idle_scrape_cost: JSON.parse(process.argv[2]),
    push_alone: { runs: A.map((a) => a.push.accepted_per_s), median: median(A.map((a) => a.push.accepted_per_s)) },
    push_scraped: { runs: B.map((b) => b.push.accepted_per_s), median: median(B.map((b) => b.push.accepted_per_s)) },
    pairs,
    ratio: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), target: "within 0.98-1.02" },
    consecutive_alone_runs_ratio: aSteps,
    cpu_s: Object.fromEntries(runs.map((r) => [r.run, { syncd: r.cpu.syncd_s, bridge: r.cpu.bridge_s, postgres: r.cpu.postgres_s,
      scraper: r.cpu.helpers_s, push: r.cpu.children_s, other: r.cpu.other_s, wall: r.cpu.wall_s }])),
    server_logs: JSON.parse(process.argv[3]),
  };
  // One key a line: still JSON.
  console.log("{\n" + Object.entries(summary).map(([k, v]) => ` ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(",\n") + "\n}");
' "$runs" "$idle" "$(log_problems)"
