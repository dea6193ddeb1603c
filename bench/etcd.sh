#!/usr/bin/env bash
# syncd beside etcd, alternately (A = syncd, B = etcd) with the same flags:
#  - `syncbench push` against syncd and the same load as etcd KV.Put calls;
#  - `syncbench watch-fanout`: gRPC Watch streams on one syncd channel and
#    on one etcd key prefix, writers at a fixed rate.
# Each run prints syncbench's JSON and the CPU seconds of syncd + PostgreSQL
# and of etcd over the run (and the machine's other CPU, to show what else
# ran); then a summary of syncd / etcd ratios per pair, with their spread
# (bench/etcd-summary.mjs).
#
#   bench/etcd.sh [--quick] [PAIRS]     # PAIRS: default 3 of each command
#
# etcd: a single member on loopback, fsync on (its default), its data in a
# temporary directory (on $TMPDIR's disk; a warning says when that is not
# PostgreSQL's). Debian's etcd-server is installed when `etcd` is missing.
# syncd and PostgreSQL: servers.sh's private database at $SYNC_TEST_DATABASE_URL.
#
# Environment: PUSH_FLAGS (default "--streams 64 --channels 8 --window 32
# --duration-ms 10000"), WATCH_FLAGS (default "--watchers 500 --writers 4
# --rate 100 --duration-ms 10000"), QUIET_LOAD (1: wait for the 1-minute
# load average to fall under this first, at most QUIET_MAX seconds, default
# 1200; 0: do not wait). --quick: one pair of each with --smoke, no
# waiting; a failed check fails the script; bench/smoke.sh runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
pairs="${1:-3}"

source "$here/servers.sh"
if [ "$quick" = 1 ]; then
  pairs=1
  push_flags=(--smoke) watch_flags=(--smoke)
else
  read -ra push_flags <<<"${PUSH_FLAGS:---streams 64 --channels 8 --window 32 --duration-ms 10000}"
  read -ra watch_flags <<<"${WATCH_FLAGS:---watchers 500 --writers 4 --rate 100 --duration-ms 10000}"
  [ "${QUIET_LOAD:-1}" != 0 ] && wait_quiet "${QUIET_LOAD:-1}" "${QUIET_MAX:-1200}"
fi

start_etcd

# etcd caps no client's streams; syncd caps one address at 1,000 unless told.
SYNCD_ARGS="${SYNCD_ARGS:---max-streams-per-address 0}"
start_servers etcd
server="127.0.0.1:$grpc_port"
pg_dir="$(psql "$bench_url" -tAc 'SHOW data_directory')"
if [ -d "$pg_dir" ] && [ "$(df --output=source "$pg_dir" | tail -1)" != "$(df --output=source "$bench_tmp" | tail -1)" ]; then
  echo "# warning: etcd's data ($bench_tmp) and PostgreSQL's ($pg_dir) are on different disks; set TMPDIR" >&2
fi
echo "# syncd $server, etcd $etcd_client, $pairs pairs; push ${push_flags[*]}; watch-fanout ${watch_flags[*]}" >&2

runs="$bench_tmp/runs.jsonl"
# run NAME TARGET COMMAND FLAGS...: one syncbench run, its JSON and the CPU
# over it; etcd's pid is given to cpu_mark/cpu_other, whose field for the
# PIDs given becomes etcd_s.
run() {
  local name="$1" target="$2" command="$3" out
  shift 3
  [ "$target" = syncd ] && psql "$bench_url" -qc CHECKPOINT
  cpu_mark "$etcd_pid"
  out="$("$SYNCBENCH_BIN" "$command" --target "$target" --server "$server" --etcd "$etcd_client" \
    --channel-prefix "$name-" --json "$@")" || { echo "$command against $target failed: $out" >&2; return 1; }
  echo "{\"run\": \"$name\", \"target\": \"$target\", \"result\": $out, \"cpu\": $(cpu_other "$etcd_pid" | sed 's/"helpers_s"/"etcd_s"/')}" |
    tee -a "$runs"
}
for i in $(seq "$pairs"); do
  run "push-A$i" syncd push "${push_flags[@]}"
  run "push-B$i" etcd push "${push_flags[@]}"
done
for i in $(seq "$pairs"); do
  run "watch-A$i" syncd watch-fanout "${watch_flags[@]}"
  run "watch-B$i" etcd watch-fanout "${watch_flags[@]}"
done
node "$here/etcd-summary.mjs" "$runs"
