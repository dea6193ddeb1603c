// gRPC for fault tests: clients of syncd's Sync and grpc.health.v1 Health
// services, a unary call with a deadline, and the patches the load sends
// (create_node, as JSON for a WebSocket or as protobuf for gRPC).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { toStruct } from './proto_values.mjs';
import { node } from './ws_client.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const loadOptions = { keepCase: false, longs: Number, enums: String, defaults: false, oneofs: true };
const { sync } = grpc.loadPackageDefinition(
  protoLoader.loadSync(path.join(here, '../../proto/sync/v1/sync.proto'), loadOptions));
// grpc.health.v1, as in grpc/health/v1/health.proto, written out: no copy of
// that file comes with the repository or its packages.
const healthV1 = {
  HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
  HealthCheckResponse: {
    fields: { status: { type: 'ServingStatus', id: 1 } },
    nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
  },
  Health: { methods: { Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' } } },
};
const health = grpc.loadPackageDefinition(protoLoader.fromJSON(
  { nested: { grpc: { nested: { health: { nested: { v1: { nested: healthV1 } } } } } } }, loadOptions)).grpc.health;

export const syncClient = (address) => new sync.v1.Sync(address, grpc.credentials.createInsecure());
export const healthClient = (address) => new health.v1.Health(address, grpc.credentials.createInsecure());

// A unary call with a deadline: resolves to the response, rejects with the
// grpc error (err.code).
export const unary = (client, method, request, deadlineMs = 10000) => new Promise((resolve, reject) => {
  client[method](request, { deadline: new Date(Date.now() + deadlineMs) }, (err, res) => (err ? reject(err) : resolve(res)));
});

// The n-th patch of `clientId`: a node of its own, so every patch stores
// something new.
export const jsonPatch = (id, clientId, nodeId, n) => node(id, nodeId, { clientId, data: { label: 'Person', properties: { n } } });
export const grpcPatch = (id, clientId, nodeId, n) => {
  const p = jsonPatch(id, clientId, nodeId, n);
  return { ...p, data: toStruct(p.data) };
};
