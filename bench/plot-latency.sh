#!/usr/bin/env bash
# Ack latency against offered load for `syncbench push`, as a PNG.
#
#   bench/plot-latency.sh [RATE ...]      (default 1000 2000 ... 24000 patches/s)
#
# Runs `syncbench push --rate R --json` once per rate against a running syncd
# ($SYNC_SERVER, default localhost:50051; scripts/up starts one), writes the
# figures to build/bench/push-latency.tsv and draws bench/push-latency.png
# with gnuplot (installed from Debian if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/lib/common.sh"
ensure_packages gnuplot-nox

BENCH="${SYNCBENCH_BIN:-$ROOT/build/bench/syncbench}"
[ -x "$BENCH" ] || { echo "plot-latency: build first (scripts/up or cmake --build build): $BENCH is missing" >&2; exit 1; }
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(1000 2000 4000 6000 8000 10000 12000 14000 16000 20000 24000)
data="$ROOT/build/bench/push-latency.tsv"
png="$ROOT/bench/push-latency.png"
run="$(date +%s)"

printf '# offered\taccepted_per_s\tp50_ms\tp99_ms\tp999_ms\n' >"$data"
for rate in "${rates[@]}"; do
  log "push at $rate patches/s offered"
  out="$("$BENCH" push --rate "$rate" --streams 64 --channels 8 --window 256 --warmup-ms 1000 \
         --duration-ms 5000 --channel-prefix "plot-$run-$rate-" --json)"
  echo "$out" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
a = r["ack_ms"]
print(sys.argv[1], round(r["accepted_per_s"]), a["p50"], a["p99"], a["p999"], sep="\t")' "$rate" | tee -a "$data"
done

gnuplot <<GP
set terminal pngcairo size 900,560 font ",11"
set output "$png"
set title "syncbench push: ack latency against offered load (64 streams, 8 channels; $(nproc) cores, $(date +%F))"
set xlabel "offered load (patches/s)"
set ylabel "ack latency (ms, log scale)"
set logscale y
set grid
set key top left
plot "$data" using 1:3 with linespoints lw 2 title "p50", \
     "$data" using 1:4 with linespoints lw 2 title "p99", \
     "$data" using 1:5 with linespoints lw 2 title "p999", \
     10 with lines dt 2 lc rgb "gray" title "10 ms"
GP
log "wrote $png (data: $data)"
