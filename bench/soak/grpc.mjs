// sync.v1 stubs generated at run time from proto/sync/v1/sync.proto, and
// google.protobuf.Struct/Value <-> plain JSON.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const definition = protoLoader.loadSync(path.join(here, '../../proto/sync/v1/sync.proto'),
  { keepCase: false, longs: Number, enums: String, defaults: false, oneofs: true });
const { sync } = grpc.loadPackageDefinition(definition);

export { grpc };

// One client object per address; grpc-js reconnects it by itself after the
// server comes back. No keepalive pings: a kill -9 closes the sockets
// anyway, and syncd's default ping policy would answer frequent pings on
// idle streams with GOAWAY, which would look like faults we did not inject.
const clients = new Map();
export function syncClient(address) {
  if (!clients.has(address)) {
    clients.set(address, new sync.v1.Sync(address, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    }));
  }
  return clients.get(address);
}

export function closeClients() {
  for (const c of clients.values()) c.close();
  clients.clear();
}

export const toValue = (v) => (v === null ? { nullValue: 'NULL_VALUE' }
  : Array.isArray(v) ? { listValue: { values: v.map(toValue) } }
    : typeof v === 'object' ? { structValue: toStruct(v) }
      : { [typeof v === 'number' ? 'numberValue' : typeof v === 'boolean' ? 'boolValue' : 'stringValue']: v });
export const toStruct = (o) => ({ fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toValue(v)])) });
export const fromValue = (v) => (v.kind === 'structValue' ? fromStruct(v.structValue)
  : v.kind === 'listValue' ? (v.listValue.values ?? []).map(fromValue)
    : v.kind === 'nullValue' ? null : v[v.kind]);
export const fromStruct = (s) => Object.fromEntries(Object.entries(s?.fields ?? {}).map(([k, v]) => [k, fromValue(v)]));

// A patch in its JSON (WebSocket) shape -> the proto message.
export function toProtoPatch(p) {
  const out = { ...p };
  if (p.data !== undefined) out.data = toStruct(p.data);
  if (p.propertyValue !== undefined) out.propertyValue = toValue(p.propertyValue);
  return out;
}

// The lower-case ack status the WebSocket protocol uses.
export const ackStatus = (s) => String(s ?? '').toLowerCase();
