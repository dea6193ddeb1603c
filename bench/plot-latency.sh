#!/usr/bin/env bash
# Latency against offered load, syncd beside etcd on the same axes:
#  - push: `syncbench push --rate R` (64 streams on 8 channels, window 256)
#    against syncd and with `--target etcd`: ack (Put) p50 and p99;
#  - watch fan-out: `syncbench watch-fanout --rate R` (WATCHERS gRPC Watch
#    streams on one channel / key prefix, 4 writers): write -> receive p50
#    and p99.
# At each rate syncd runs first, then etcd. Starts its own syncd (on a
# private database at $SYNC_TEST_DATABASE_URL, see servers.sh) and etcd;
# writes the figures to build/bench/{push,watch}-latency.tsv and draws
# bench/push-latency.png and bench/watch-latency.png with gnuplot
# (installed from Debian if missing).
#
#   bench/plot-latency.sh [--quick]
#
# Environment: PUSH_RATES (default "1000 2000 4000 8000 12000 16000 20000
# 24000 32000"), WATCH_RATES (writes/s, default "20 50 100 200 300"),
# WATCHERS (500). --quick: two rates of each, short runs, no plot.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$here/.." && pwd)"
source "$ROOT/scripts/lib/common.sh"
quick=0
[ "${1:-}" = --quick ] && quick=1
[ "$quick" = 1 ] || ensure_packages gnuplot-nox

read -ra push_rates <<<"${PUSH_RATES:-1000 2000 4000 8000 12000 16000 20000 24000 32000}"
read -ra watch_rates <<<"${WATCH_RATES:-20 50 100 200 300}"
push_time=(--warmup-ms 1000 --duration-ms 5000)
watch_time=(--duration-ms 5000)
if [ "$quick" = 1 ]; then
  push_rates=(500 1000) watch_rates=(20 50)
  push_time=(--warmup-ms 200 --duration-ms 1000) watch_time=(--duration-ms 1000)
fi

source "$here/servers.sh"
start_etcd
SYNCD_ARGS="${SYNCD_ARGS:---max-streams-per-address 0}"
start_servers plot
server="127.0.0.1:$grpc_port"
out_dir="$ROOT/build/bench"
[ "$quick" = 1 ] && out_dir="$bench_tmp"  # a quick run leaves the last full run's figures alone
mkdir -p "$out_dir"
push_tsv="$out_dir/push-latency.tsv"
watch_tsv="$out_dir/watch-latency.tsv"
printf '# target\toffered_per_s\tachieved_per_s\tp50_ms\tp99_ms\n' | tee "$push_tsv" >"$watch_tsv"

# point TSV TARGET RATE COMMAND FLAGS...: one run, one line of figures. A
# run whose checks failed (etcd refuses Puts past its capacity with "too
# many requests") is kept with its errors in a sixth column and left off
# the plot; in --quick mode it fails the script.
point() {
  local tsv="$1" target="$2" rate="$3" command="$4" out status=0
  shift 4
  log "$command against $target at $rate/s"
  out="$("$SYNCBENCH_BIN" "$command" --target "$target" --server "$server" --etcd "$etcd_client" --rate "$rate" \
    --channel-prefix "plot-$command-$target-$rate-" --json "$@")" || status=$?
  if [ "$status" != 0 ] && { [ "$quick" = 1 ] || ! grep -q '"errors"' <<<"$out"; }; then
    echo "$command against $target at $rate/s failed: $out" >&2
    return 1
  fi
  node -e '
    const r = JSON.parse(process.argv[1]);
    const l = r.ack_ms ?? r.latency_ms;
    const row = [process.argv[2], process.argv[3], Math.round(r.accepted_per_s ?? r.deliveries_per_s), l.p50, l.p99];
    console.log([...row, ...(r.errors ? [r.errors] : [])].join("\t"));
  ' "$out" "$target" "$rate" | tee -a "$tsv"
}
for rate in "${push_rates[@]}"; do
  for target in syncd etcd; do
    point "$push_tsv" "$target" "$rate" push --streams 64 --channels 8 --window 256 "${push_time[@]}"
  done
done
for rate in "${watch_rates[@]}"; do
  for target in syncd etcd; do
    point "$watch_tsv" "$target" "$rate" watch-fanout --watchers "${WATCHERS:-500}" --writers 4 "${watch_time[@]}"
  done
done
[ "$quick" = 1 ] && exit 0

# plot PNG TSV TITLE XLABEL YLABEL
plot() {
  gnuplot <<GP
set terminal pngcairo size 900,560 font ",11"
set output "$1"
set title "$3 ($(nproc) cores, $(date +%F))"
set xlabel "$4"
set ylabel "$5 (ms, log scale)"
set logscale y
set grid
set key top left
plot "< grep -P '^syncd(\t[^\t]*){4}$' '$2'" using 2:4 with linespoints lw 2 lc rgb "#1f77b4" title "syncd p50", \
     "< grep -P '^syncd(\t[^\t]*){4}$' '$2'" using 2:5 with linespoints lw 2 lc rgb "#1f77b4" dt 2 title "syncd p99", \
     "< grep -P '^etcd(\t[^\t]*){4}$' '$2'" using 2:4 with linespoints lw 2 lc rgb "#d62728" title "etcd p50", \
     "< grep -P '^etcd(\t[^\t]*){4}$' '$2'" using 2:5 with linespoints lw 2 lc rgb "#d62728" dt 2 title "etcd p99", \
     10 with lines dt 3 lc rgb "gray" title "10 ms"
GP
}
plot "$here/push-latency.png" "$push_tsv" "durable writes: ack latency against offered load (64 streams, 8 channels)" \
  "offered load (writes/s)" "ack latency"
plot "$here/watch-latency.png" "$watch_tsv" "gRPC watch fan-out: ${WATCHERS:-500} watchers, write -> receive latency" \
  "writes/s offered (each to every watcher)" "latency"
log "wrote $here/push-latency.png and $here/watch-latency.png (data: $push_tsv, $watch_tsv)"
