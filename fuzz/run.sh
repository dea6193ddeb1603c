#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each (default 20) on its committed
# seed corpus; new inputs go to a scratch directory, crashes to
# build-san/fuzz-artifacts/. Exits non-zero on the first crash.
#
# Each target runs on a 1 MiB stack and with a per-input time limit, so
# that recursion growing with the input (a stack overflow) and parsing
# slower than linear (a timeout on the large seeds) fail the run.
#
#   fuzz/run.sh [SECONDS] [BUILD_DIR]     (BUILD_DIR defaults to build-san)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-20}"
build="${2:-$ROOT/build-san}"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
for target in json_codec patch_check jwt http_upgrade socketio; do
  bin="$build/fuzz/${target}_fuzz"
  [ -x "$bin" ] || { echo "fuzz/run.sh: $bin is missing; configure with clang and -DSYNC_FUZZ=ON" >&2; exit 2; }
  scratch="$(mktemp -d)"
  echo "==> fuzzing $target for ${seconds}s"
  log="$artifacts/$target.log"
  if ! (ulimit -s 1024 && exec "$bin" -max_total_time="$seconds" -timeout=2 -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$artifacts/$target-" "$scratch" "$ROOT/fuzz/corpus/$target") >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz/run.sh: $target failed; the input that broke it is in $artifacts (log: $log)" >&2
    rm -rf "$scratch"
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" | tr '\n' ' '
  echo
  rm -rf "$scratch"
done
echo "fuzz: every target ran clean"
