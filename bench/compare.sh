#!/usr/bin/env bash
# Before / after for any change: builds two commits of syncd and runs the
# headline figures alternately on this machine (OLD NEW OLD NEW ...), each
# run on a fresh database and a freshly started syncd of its commit, then
# prints per figure the median of each side and NEW / OLD per pair with its
# median, min and max (bench/compare-summary.mjs).
#
#   bench/compare.sh [--quick] OLD NEW [PAIRS]     # PAIRS: default 3
#
# Figures: `syncbench push` (64 streams on 8 channels, window 32, 10 s):
# accepted/s, ack p50 / p99, syncd's and PostgreSQL's CPU per patch; and
# `syncbench watch-fanout` (500 Watch streams, 4 writers at 100 writes/s,
# 10 s): deliveries per CPU-second of syncd + PostgreSQL, latency p50 / p99.
# The load generator is NEW's syncbench for both sides, so only the server
# differs.
#
# Builds go to $COMPARE_DIR (default build/compare/<commit>/, a git
# worktree and its Release build), kept for the next comparison, through
# ccache (installed from Debian if missing). Needs a PostgreSQL at
# $SYNC_TEST_DATABASE_URL to create databases on (scripts/up prints one).
# Environment: PUSH_FLAGS, WATCH_FLAGS (as in bench/etcd.sh), QUIET_LOAD
# (1: wait for the 1-minute load average to fall under this first; 0: do
# not wait). --quick: one pair of --smoke runs, no waiting.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$here/.." && pwd)"
source "$ROOT/scripts/lib/common.sh"
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
[ $# -ge 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
: "${SYNC_TEST_DATABASE_URL:?set SYNC_TEST_DATABASE_URL to a PostgreSQL URL you can create databases on}"
old="$(git -C "$ROOT" rev-parse --verify "$1^{commit}")" || { echo "compare: $1 is not a commit" >&2; exit 2; }
new="$(git -C "$ROOT" rev-parse --verify "$2^{commit}")" || { echo "compare: $2 is not a commit" >&2; exit 2; }
pairs="${3:-3}"
ensure_packages ccache

dir="$(realpath -m "${COMPARE_DIR:-$ROOT/build/compare}")"
export CCACHE_BASEDIR="$dir"  # the same file in two worktrees compiles to the same cache entry

# build COMMIT: its worktree and Release build of syncd and syncbench, once.
build() {
  local at="$dir/$1"
  if [ -x "$at/build/service/syncd" ] && [ -x "$at/build/bench/syncbench" ] && [ -x "$at/build/bridge/sync-bridge" ]; then
    return 0
  fi
  log "building ${1:0:12} in $at (ccache: later builds of nearby commits are quicker)"
  [ -d "$at/src" ] || git -C "$ROOT" worktree add --detach "$at/src" "$1" >/dev/null
  cmake -S "$at/src" -B "$at/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  cmake --build "$at/build" -j"$(nproc)" --target syncd syncbench sync-bridge >&2
}
build "$old"
build "$new"

# servers.sh's start_servers runs $SYNCD_BIN and $SYNC_BRIDGE_BIN.
export SYNCBENCH_BIN="$dir/$new/build/bench/syncbench"
export SYNCD_BIN="$dir/$new/build/service/syncd" SYNC_BRIDGE_BIN="$dir/$new/build/bridge/sync-bridge"
source "$here/servers.sh"
if [ "$quick" = 1 ]; then
  pairs=1 push_flags=(--smoke) watch_flags=(--smoke)
else
  read -ra push_flags <<<"${PUSH_FLAGS:---streams 64 --channels 8 --window 32 --duration-ms 10000}"
  read -ra watch_flags <<<"${WATCH_FLAGS:---watchers 500 --writers 4 --rate 100 --duration-ms 10000}"
  [ "${QUIET_LOAD:-1}" != 0 ] && wait_quiet "${QUIET_LOAD:-1}" "${QUIET_MAX:-1200}"
fi
echo "# OLD ${old:0:12}, NEW ${new:0:12}: $pairs pairs; push ${push_flags[*]}; watch-fanout ${watch_flags[*]}" >&2

runs="$bench_tmp/runs.jsonl"
# run SIDE COMMIT I: push and watch-fanout against a fresh syncd of COMMIT
# on a fresh database, each with the CPU over it.
run() {
  local side="$1" commit="$2" i="$3" out
  SYNCD_BIN="$dir/$commit/build/service/syncd" SYNC_BRIDGE_BIN="$dir/$commit/build/bridge/sync-bridge" \
    SYNCD_ARGS="--max-streams-per-address 0" start_servers "compare_$side$i"
  local command flags
  for command in push watch-fanout; do
    if [ "$command" = push ]; then
      flags=("${push_flags[@]}")
      psql "$bench_url" -qc CHECKPOINT
    else
      flags=("${watch_flags[@]}")
    fi
    cpu_mark
    out="$("$SYNCBENCH_BIN" "$command" --server "127.0.0.1:$grpc_port" --channel-prefix "$side$i-" --json "${flags[@]}")" ||
      { echo "$command against $side (${commit:0:12}) failed: $out" >&2; return 1; }
    echo "{\"side\": \"$side\", \"pair\": $i, \"command\": \"$command\", \"result\": $out, \"cpu\": $(cpu_other)}" |
      tee -a "$runs"
  done
  stop_servers
}
for i in $(seq "$pairs"); do
  run old "$old" "$i"
  run new "$new" "$i"
done
node "$here/compare-summary.mjs" "$runs" "$old" "$new"
