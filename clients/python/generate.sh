#!/usr/bin/env bash
# Generates the Python stubs for sync.v1 from proto/ into OUT (default:
# clients/python/gen, git-ignored). Needs Debian's protobuf-compiler,
# protobuf-compiler-grpc (grpc_python_plugin) and python3-grpcio.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/gen}"
mkdir -p "$out"
protoc -I "$here/../../proto" -I /usr/include \
  --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
  sync/v1/sync.proto
echo "generated sync.v1 stubs in $out"
