// A grpcurl-style client with no .proto files: everything it knows about
// the API comes from the server's reflection service, as with grpcurl.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { GrpcReflection } from 'grpc-js-reflection-client';
import { createDatabase, startSyncd } from './syncd_process.mjs';

let db;
let syncd;
let address;
let reflection;

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url);
  address = `127.0.0.1:${syncd.grpcPort}`;
  reflection = new GrpcReflection(address, grpc.credentials.createInsecure());
});

after(async () => {
  await syncd?.stop();
  db?.drop();
});

// A client for `service`, built from the descriptors reflection returns.
async function clientFor(service) {
  const descriptor = await reflection.getDescriptorBySymbol(service);
  const pkg = descriptor.getPackageObject({ keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const Ctor = service.split('.').reduce((o, k) => o[k], pkg);
  return new Ctor(address, grpc.credentials.createInsecure());
}

// Descriptor-built clients use the proto field names (client_id) and see
// google.protobuf.Struct's map as a list of entries; these convert plain
// JSON values to and from that form. (grpcurl takes canonical JSON directly.)
const toValue = (v) => {
  if (v === null) return { null_value: 'NULL_VALUE' };
  if (Array.isArray(v)) return { list_value: { values: v.map(toValue) } };
  switch (typeof v) {
    case 'number': return { number_value: v };
    case 'string': return { string_value: v };
    case 'boolean': return { bool_value: v };
    default: return { struct_value: toStruct(v) };
  }
};
const toStruct = (o) => ({ fields: Object.entries(o).map(([key, value]) => ({ key, value: toValue(value) })) });
const fromValue = (v) => {
  if (v.kind === 'struct_value' || v.struct_value) return fromStruct(v.struct_value);
  if (v.kind === 'list_value' || v.list_value) return v.list_value.values.map(fromValue);
  if (v.kind === 'null_value') return null;
  return v[v.kind];
};
const fromStruct = (s) => Object.fromEntries(
  (Array.isArray(s.fields) ? s.fields : Object.entries(s.fields).map(([key, value]) => ({ key, value })))
    .map(({ key, value }) => [key, fromValue(value)]));

const call = (client, method, body) =>
  new Promise((resolve, reject) => client[method](body, (err, res) => (err ? reject(err) : resolve(res))));

test('lists the sync, health and reflection services', async () => {
  const services = await reflection.listServices();
  for (const s of ['sync.v1.Sync', 'grpc.health.v1.Health']) assert.ok(services.includes(s), `${s} in ${services}`);
  assert.ok(services.some((s) => s.startsWith('grpc.reflection.')), services.join(','));
});

test('describes the API: methods and message fields', async () => {
  const methods = (await reflection.listMethods('sync.v1.Sync')).map((m) => m.name);
  for (const m of ['Session', 'Push', 'GetChanges', 'Watch', 'GetChannelInfo', 'ConfigureChannel']) {
    assert.ok(methods.includes(m), `${m} in ${methods}`);
  }
  const root = (await reflection.getDescriptorBySymbol('sync.v1.Patch')).getProtobufJsRoot();
  const patch = root.lookupType('sync.v1.Patch');
  for (const f of ['id', 'timestamp', 'client_id', 'op', 'node_id', 'edge_id', 'target_type', 'target_id',
    'property_key', 'property_value', 'data', 'base_version', 'server_version']) {
    assert.ok(patch.fields[f], `Patch.${f}`);
  }
});

test('health reports SERVING through a reflected Health client', async () => {
  const health = await clientFor('grpc.health.v1.Health');
  assert.equal((await call(health, 'Check', { service: '' })).status, 'SERVING');
  assert.equal((await call(health, 'Check', { service: 'sync.v1.Sync' })).status, 'SERVING');
});

test('pushes a patch with a JSON body and reads it back', async () => {
  const sync = await clientFor('sync.v1.Sync');
  const body = {
    channel: 'demo',
    patches: [{ id: 'p1', client_id: 'me', op: 'create_node', node_id: 'n1',
      data: toStruct({ label: 'Person', properties: { name: 'Ada', born: 1815, tags: ['math', null] } }) }],
  };
  const pushed = await call(sync, 'Push', body);
  assert.deepEqual(pushed.acks.map((a) => [a.patch_id, a.status, a.server_version]), [['p1', 'ACCEPTED', 1]]);
  const again = await call(sync, 'Push', body);
  assert.equal(again.acks[0].status, 'IGNORED');

  const changes = await call(sync, 'GetChanges', { channel: 'demo', from_version: 0 });
  assert.equal(changes.has_more, false);
  assert.equal(changes.version, 1);
  assert.equal(changes.patches.length, 1);
  const p = changes.patches[0];
  assert.equal(p.id, 'p1');
  assert.equal(p.server_version, 1);
  assert.deepEqual(fromStruct(p.data), { label: 'Person', properties: { name: 'Ada', born: 1815, tags: ['math', null] } });

  const info = await call(sync, 'GetChannelInfo', { channel: 'demo' });
  assert.equal(info.head_version, 1);
  assert.equal(info.conflict_policy, 'last_writer_wins');
});

test('watches a channel: history, then live', async () => {
  const sync = await clientFor('sync.v1.Sync');
  const push = (id) => call(sync, 'Push', { channel: 'watched', patches: [{ id, op: 'opaque', data: toStruct({ n: id }) }] });
  await push('a');
  await push('b');
  const stream = sync.Watch({ channel: 'watched', from_version: 1 });
  const seen = [];
  const done = new Promise((resolve, reject) => {
    stream.on('data', (patch) => {
      seen.push([patch.server_version, patch.id]);
      if (seen.length === 2) resolve();
    });
    stream.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
  });
  await new Promise((r) => setTimeout(r, 200));
  await push('c');
  await done;
  stream.cancel();
  assert.deepEqual(seen, [[2, 'b'], [3, 'c']]);
});
