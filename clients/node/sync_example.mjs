#!/usr/bin/env node
// Push patches to syncd and watch a channel, with stubs generated at run
// time from proto/sync/v1/sync.proto by @grpc/proto-loader.
//
//   cd clients/node && npm install
//   node sync_example.mjs push --channel demo --count 3
//   node sync_example.mjs watch --channel demo --from-version 0 --limit 3
//
// `watch` prints each patch as one JSON line. The server defaults to
// localhost:50051 (or $SYNC_SERVER).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const { positionals, values: opts } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string', default: process.env.SYNC_SERVER ?? 'localhost:50051' },
    channel: { type: 'string', default: 'default' },
    count: { type: 'string', default: '3' },
    'from-version': { type: 'string', default: '0' },
    limit: { type: 'string', default: '0' },
    help: { type: 'boolean', short: 'h' },
  },
});
const command = positionals[0];
if (opts.help || !['push', 'watch'].includes(command)) {
  console.log('usage: node sync_example.mjs push|watch [--server HOST:PORT] [--channel NAME] [--count N] [--from-version V] [--limit N]');
  process.exit(opts.help ? 0 : 2);
}

// Numbers as JS numbers, JSON names (clientId), Struct as plain objects via toObject below.
const definition = protoLoader.loadSync(path.join(here, '../../proto/sync/v1/sync.proto'),
  { keepCase: false, longs: Number, enums: String, defaults: false, oneofs: true });
const { sync } = grpc.loadPackageDefinition(definition);
const client = new sync.v1.Sync(opts.server, grpc.credentials.createInsecure());

// google.protobuf.Struct/Value <-> plain JSON.
const toValue = (v) => (v === null ? { nullValue: 'NULL_VALUE' }
  : Array.isArray(v) ? { listValue: { values: v.map(toValue) } }
    : typeof v === 'object' ? { structValue: toStruct(v) }
      : { [typeof v === 'number' ? 'numberValue' : typeof v === 'boolean' ? 'boolValue' : 'stringValue']: v });
const toStruct = (o) => ({ fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toValue(v)])) });
const fromValue = (v) => (v.kind === 'structValue' ? fromStruct(v.structValue)
  : v.kind === 'listValue' ? (v.listValue.values ?? []).map(fromValue)
    : v.kind === 'nullValue' ? null : v[v.kind]);
const fromStruct = (s) => Object.fromEntries(Object.entries(s.fields ?? {}).map(([k, v]) => [k, fromValue(v)]));

if (command === 'push') {
  const patches = Array.from({ length: Number(opts.count) }, (_, i) => ({
    id: `node-${randomUUID().slice(0, 12)}`, timestamp: Date.now(), clientId: 'node-example', op: 'create_node',
    nodeId: `node-node-${randomUUID().slice(0, 8)}`, data: toStruct({ label: 'Person', properties: { name: `from node ${i}`, n: i } }),
  }));
  client.Push({ channel: opts.channel, patches }, (err, res) => {
    if (err) { console.error(`push failed: ${err.message}`); process.exit(1); }
    for (const a of res.acks) console.log(JSON.stringify({ patchId: a.patchId, status: a.status.toLowerCase(), serverVersion: a.serverVersion }));
    client.close();
  });
} else {
  const stream = client.Watch({ channel: opts.channel, fromVersion: Number(opts['from-version']) });
  let seen = 0;
  stream.on('data', (p) => {
    console.log(JSON.stringify({ ...p, data: p.data ? fromStruct(p.data) : undefined }));
    if (Number(opts.limit) && ++seen >= Number(opts.limit)) { stream.cancel(); client.close(); }
  });
  stream.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) { console.error(`watch failed: ${e.message}`); process.exit(1); } });
}
