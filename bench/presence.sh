#!/usr/bin/env bash
# Presence churn beside push: `syncbench push` straight to syncd, with (B)
# and without (A) bench/presence/churn.mjs running through sync-bridge on
# another channel: CONNECTIONS WebSockets, each a presence member sending
# its state RATE times a second, living about LIFETIME seconds and then
# reconnecting, and an observer timing each join. Runs alternate A B A B …
# A (PAIRS B runs, each between two A runs), on a private database of the
# PostgreSQL at $SYNC_TEST_DATABASE_URL, one syncd and one sync-bridge for
# the whole pass. Prints one JSON line per run, then a summary: push
# throughput with churn against the mean of the A runs on either side, and
# join -> seen-by-others latency.
#
#   bench/presence.sh [--quick] [PAIRS]     # PAIRS: default 3
#
# Environment: CONNECTIONS (1000), RATE (10 updates/s each), LIFETIME (3 s),
# SUBSCRIBE (1: the churning sockets also subscribe, ?presence=1),
# PUSH_SECONDS (10; push also warms up 2 s first), PUSH_ARGS (extra
# `syncbench push` flags), SYNCD_ARGS, BRIDGE_ARGS, QUIET_LOAD (1: wait for
# the 1-minute load average to fall under this before the first run, at
# most QUIET_MAX seconds, default 1200; 0: do not wait). --quick: one pair, 100 connections, short runs, no waiting,
# and a failed check (push or churn) fails the script; bench/smoke.sh runs it.
#
# Needs `npm install` in bench/presence (for `ws`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
pairs="${1:-3}"
[ -d "$here/presence/node_modules/ws" ] || { echo "run npm install in bench/presence first" >&2; exit 2; }
source "$here/servers.sh"

if [ "$quick" = 1 ]; then
  pairs=1
  churn_flags=(--quick)
  push_flags=(--streams 8 --duration-ms 2000 --warmup-ms 500)
else
  churn_flags=(--connections "${CONNECTIONS:-1000}" --lifetime "${LIFETIME:-3}")
  push_flags=(--duration-ms "$(( ${PUSH_SECONDS:-10} * 1000 ))")
fi
churn_flags+=(--rate "${RATE:-10}" --subscribe "${SUBSCRIBE:-1}" --seconds 0)  # 0: until push is done
push_flags+=(${PUSH_ARGS:-})

start_servers presence
server="127.0.0.1:$grpc_port"
runs="$bench_tmp/runs.jsonl"
: >"$runs"
[ "$quick" = 0 ] && [ "${QUIET_LOAD:-1}" != 0 ] && wait_quiet "${QUIET_LOAD:-1}" "${QUIET_MAX:-1200}"


run_b() {
  psql "$bench_url" -qc CHECKPOINT
  node "$here/presence/churn.mjs" --url "ws://127.0.0.1:$bridge_port" --channel "presence-$1-$$" "${churn_flags[@]}" \
    >"$bench_tmp/churn.out" 2>"$bench_tmp/churn.err" &
  local churn=$! out status=0
  bench_extra_pids=("$churn")
  for _ in $(seq 600); do
    grep -q '^# ready' "$bench_tmp/churn.err" && break
    kill -0 "$churn" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^# ready' "$bench_tmp/churn.err" || { echo "churn did not start:" >&2; cat "$bench_tmp/churn.err" >&2; return 1; }
  cpu_mark "$churn"
  out="$(push "b$1")" || { echo "push failed: $out" >&2; status=1; }
  local cpu
  cpu="$(cpu_other "$churn")"
  kill -TERM "$churn" 2>/dev/null || true
  wait "$churn" || { echo "churn failed:" >&2; cat "$bench_tmp/churn.err" >&2; status=1; }
  bench_extra_pids=()
  [ "$status" = 0 ] || return 1
  echo "{\"run\": \"B$1\", \"push\": $out, \"churn\": $(cat "$bench_tmp/churn.out"), \"cpu\": $cpu}" | tee -a "$runs"
  if [ "$quick" = 1 ] && ! grep -q '"checks":"ok"' "$bench_tmp/churn.out"; then
    echo "churn's checks failed" >&2
    return 1
  fi
}

echo "# presence churn beside push: syncd gRPC $server, sync-bridge ws://127.0.0.1:$bridge_port, $pairs pairs" >&2
run_pairs "$pairs"

node -e '
  const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const problems = JSON.parse(process.argv[2]);
  const A = runs.filter((r) => r.run[0] === "A"), B = runs.filter((r) => r.run[0] === "B");
  const median = (v) => { const s = [...v].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
  const r2 = (x) => Math.round(x * 100) / 100;
  const pairs = B.map((b, i) => {
    const around = (A[i].push.accepted_per_s + A[i + 1].push.accepted_per_s) / 2;
    return { run: b.run, alone_around: Math.round(around), with_churn: b.push.accepted_per_s, ratio: r2(b.push.accepted_per_s / around),
      ack_p99_ms: b.push.ack_ms.p99, join_seen_ms: b.churn.joinSeenMs, join_seen_via: b.churn.joinSeenVia,
      join_seen_from_connected_at_p99_ms: b.churn.joinSeenFromConnectedAtMs.p99, sync_state_ms: { p50: b.churn.syncStateMs.p50, p99: b.churn.syncStateMs.p99 },
      sync_state_to_connected_at_ms: { p50: b.churn.syncStateToConnectedAtMs.p50, p99: b.churn.syncStateToConnectedAtMs.p99 },
      unseen_joins: b.churn.unseenJoins,
      leave_seen_ms: { p50: b.churn.leaveSeenMs.p50, p99: b.churn.leaveSeenMs.p99 }, unseen_leaves: b.churn.unseenLeaves,
      joins_per_s: b.churn.churners.openedPerSec, updates_sent_per_s: b.churn.churners.updatesSentPerSec,
      churners_bytes_in_per_s: b.churn.churners.bytesInPerSec, members_max: b.churn.observer.membersMax, checks: b.churn.checks };
  });
  const ratios = pairs.map((p) => p.ratio);
  const p99s = B.map((b) => b.churn.joinSeenMs.p99);
  const summary = {
    summary: "presence churn beside push",
    push_alone: { runs: A.map((a) => a.push.accepted_per_s), median: median(A.map((a) => a.push.accepted_per_s)),
      ack_p99_ms: A.map((a) => a.push.ack_ms.p99) },
    push_with_churn: { runs: B.map((b) => b.push.accepted_per_s), median: median(B.map((b) => b.push.accepted_per_s)),
      ack_p99_ms: B.map((b) => b.push.ack_ms.p99) },
    pairs,
    ratio: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), target: ">= 0.90" },
    join_seen_p99_ms: { runs: p99s, median: median(p99s), target: "<= 100" },
    join_seen_p50_ms: B.map((b) => b.churn.joinSeenMs.p50),
    cpu_s: Object.fromEntries(runs.map((r) => [r.run, { syncd: r.cpu.syncd_s, bridge: r.cpu.bridge_s, postgres: r.cpu.postgres_s,
      churn: r.cpu.helpers_s, push: r.cpu.children_s, other: r.cpu.other_s, wall: r.cpu.wall_s }])),
    server_logs: problems,
  };
  // One key a line: still JSON.
  console.log("{\n" + Object.entries(summary).map(([k, v]) => ` ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(",\n") + "\n}");
' "$runs" "$(log_problems)"
