#!/usr/bin/env python3
"""Push patches to syncd and watch a channel, on stubs generated from proto/.

    clients/python/generate.sh                      # once: writes clients/python/gen
    python3 clients/python/sync_example.py push --channel demo --count 3
    python3 clients/python/sync_example.py watch --channel demo --from-version 0 --limit 3

`watch` prints each patch as one JSON line. The server defaults to
localhost:50051 (or $SYNC_SERVER).
"""
import argparse
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.environ.get("SYNC_STUBS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen")))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from sync.v1 import sync_pb2, sync_pb2_grpc  # noqa: E402


def push(stub, args):
    patches = []
    for i in range(args.count):
        patch = sync_pb2.Patch(id=f"py-{uuid.uuid4().hex[:12]}", timestamp=int(time.time() * 1000),
                               client_id="python-example", op="create_node", node_id=f"py-node-{uuid.uuid4().hex[:8]}")
        patch.data.update({"label": "Person", "properties": {"name": f"from python {i}", "n": i}})
        patches.append(patch)
    response = stub.Push(sync_pb2.PushRequest(channel=args.channel, patches=patches))
    for ack in response.acks:
        print(json.dumps({"patchId": ack.patch_id, "status": sync_pb2.Ack.Status.Name(ack.status).lower(),
                          "serverVersion": ack.server_version}), flush=True)


def watch(stub, args):
    request = sync_pb2.WatchRequest(channel=args.channel, from_version=args.from_version)
    for seen, patch in enumerate(stub.Watch(request), start=1):
        print(json.dumps(json_format.MessageToDict(patch)), flush=True)
        if args.limit and seen >= args.limit:
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["push", "watch"])
    parser.add_argument("--server", default=os.environ.get("SYNC_SERVER", "localhost:50051"))
    parser.add_argument("--channel", default="default")
    parser.add_argument("--count", type=int, default=3, help="patches to push")
    parser.add_argument("--from-version", type=int, default=0, help="watch from this version")
    parser.add_argument("--limit", type=int, default=0, help="stop watching after this many patches (0: never)")
    args = parser.parse_args()
    with grpc.insecure_channel(args.server) as channel:
        stub = sync_pb2_grpc.SyncStub(channel)
        try:
            push(stub, args) if args.command == "push" else watch(stub, args)
        except grpc.RpcError as e:
            sys.exit(f"{args.command} failed: {e.code().name}: {e.details()}")


if __name__ == "__main__":
    main()
