#!/usr/bin/env bash
# Memory per idle gRPC watcher, syncd beside etcd: WATCHERS Watch streams
# (on 8 connections) on one syncd channel, then on one etcd key prefix,
# each against a freshly started server; the server's resident memory
# growth from before the watchers to once they are all registered and
# settled (3 s), divided by their number (`syncbench watch-fanout
# --server-pid`; a few writes follow, which check every watcher is live).
#
#   bench/watch-memory.sh [--quick]      # --quick: 200 watchers; bench/smoke.sh does not run it
#
# Environment: WATCHERS (10000). Needs what bench/etcd.sh needs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
watchers="${WATCHERS:-10000}"
[ "${1:-}" = --quick ] && watchers=200
source "$here/servers.sh"
start_etcd
SYNCD_ARGS="${SYNCD_ARGS:---max-streams-per-address 0}"
start_servers watchmem
for target in syncd etcd; do
  pid="$syncd_pid"
  [ "$target" = etcd ] && pid="$etcd_pid"
  "$SYNCBENCH_BIN" watch-fanout --target "$target" --server "127.0.0.1:$grpc_port" --etcd "$etcd_client" \
    --watchers "$watchers" --writers 1 --rate 10 --duration-ms 1000 --settle-ms 3000 --server-pid "$pid" \
    --channel-prefix "mem-$target-" --json |
    node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
      console.log(JSON.stringify({ target: r.target, watchers: r.parameters.watchers, rss_kib: r.server_rss_kib,
        bytes_per_watcher: r.bytes_per_watcher, watchers_complete_in_order: r.watchers_complete_in_order,
        errors: r.errors ?? null }));
      if (r.errors) process.exit(1);'
done
