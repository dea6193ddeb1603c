// The Socket.IO dialect of sync-bridge (Engine.IO v4 / Socket.IO v5 at
// /socket.io/), end to end: real PostgreSQL, syncd and sync-bridge
// processes; socket.io-client 4.x sockets (default transports and websocket
// only), raw Engine.IO frames on a bare WebSocket, JSON /sync clients and
// gRPC calls on the same channels. Every client's view is held against the
// log syncd serves over gRPC.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import grpcJs from '@grpc/grpc-js';
import { syncClient, unary } from './fault_grpc.mjs';
import { prng } from './prng.mjs';
import { fromStruct, fromValue, toStruct, toValue } from './proto_values.mjs';
import { createDatabase, startBridge, startSyncd, stopProcess } from './syncd_process.mjs';
import { RawEio, Sio, Switch, waitUntil } from './socketio_client.mjs';
import { Client, range } from './ws_client.mjs';

let db;
let dir;
let syncd;     // authentication off
let bridge;    // in front of syncd
let authd;     // the same database, with --jwt-secret-file
let authBridge;
let grpc;
const clients = [];
const cleanups = [];

const mint = (sub, read, write, ttl = 600) => execFileSync(process.env.SYNCD_BIN, [
  'token', '--key-file', join(dir, 'secret'), '--sub', sub, '--ttl', String(ttl),
  ...read.flatMap((p) => ['--read', p]), ...write.flatMap((p) => ['--write', p]),
], { encoding: 'utf8' }).trim();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sync-socketio-'));
  writeFileSync(join(dir, 'secret'), `socketio-secret-${process.pid}`);
  db = createDatabase();
  [syncd, authd] = await Promise.all([startSyncd(db.url), startSyncd(db.url, ['--jwt-secret-file', join(dir, 'secret')])]);
  writeFileSync(join(dir, 'bridge-token'), mint('sync-bridge', ['*'], [], 3600));
  // A queue small enough that a reader that stops reading falls behind
  // soon; no read-rate limit, since some tests write a lot from one socket.
  [bridge, authBridge] = await Promise.all([
    startBridge(syncd.grpcPort, ['--queue-limit', '256', '--max-read-rate', '0']),
    startBridge(authd.grpcPort, ['--upstream-token-file', join(dir, 'bridge-token')]),
  ]);
  grpc = syncClient(`127.0.0.1:${syncd.grpcPort}`);
});

after(async () => {
  for (const c of clients) c.close();
  for (const c of cleanups.reverse()) await c();
  grpc?.close();
  await Promise.all([bridge, authBridge].map((b) => b && stopProcess(b, 'sync-bridge')));
  await Promise.all([syncd, authd].map((s) => s && stopProcess(s, 'syncd')));
  db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// A connected socket.io-client socket (websocket only unless
// {defaultTransports: true}).
const sio = async (url = bridge.http, options = {}) => {
  const c = new Sio(url, options);
  clients.push(c);
  return c.connected();
};
// A socket that joined `channel`.
const joined = async (channel, url, options) => {
  const c = await sio(url, options);
  const ack = await c.join(channel);
  assert.equal(ack?.success, true, `join ${channel}: ${JSON.stringify(ack)}`);
  return c;
};

// ---- Changes ------------------------------------------------------------------

let seq = 0;
const change = (operation, documentId, data, extra = {}) => ({
  id: `c${++seq}-${operation}-${documentId}`, collection: 'todos', documentId, operation, data,
  timestamp: Date.now(), userId: 'tester', ...extra,
});
const insert = (doc, data = { title: doc }, extra) => change('insert', doc, data, extra);
const update = (doc, data, extra) => change('update', doc, data, extra);
const remove = (doc, extra) => change('delete', doc, {}, extra);

// An ack of success for `c` (not a duplicate); resolves to its version.
function accepted(ack, c) {
  assert.equal(ack?.changeId, c.id, JSON.stringify(ack));
  assert.equal(ack.success, true, JSON.stringify(ack));
  assert.ok(!ack.duplicate, JSON.stringify(ack));
  assert.ok(Number.isInteger(ack.timestamp) && ack.timestamp > 0, JSON.stringify(ack));
  return ack.timestamp;
}
// An ack of a rejected change; resolves to its error code.
function rejected(ack, c) {
  assert.equal(ack?.changeId, c.id, JSON.stringify(ack));
  assert.equal(ack.success, false, JSON.stringify(ack));
  assert.ok(Number.isInteger(ack.timestamp), `a rejected change's ack has a timestamp: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error?.code, 'string', JSON.stringify(ack));
  assert.ok(ack.error.code.length > 0 && ack.error.message?.length > 0, JSON.stringify(ack));
  return ack.error.code;
}
// An answer {success: false, error: {code, message}} to a bad event.
function refused(ack, what) {
  assert.equal(ack?.success, false, `${what}: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error?.code, 'string', `${what}: ${JSON.stringify(ack)}`);
  assert.ok(ack.error.code.length > 0 && typeof ack.error.message === 'string' && ack.error.message.length > 0, what);
  return ack.error.code;
}

// Versions strictly increasing, no change twice.
function inOrder(changes, what) {
  const v = changes.map((c) => c.timestamp);
  for (let i = 1; i < v.length; i++) assert.ok(v[i] > v[i - 1], `${what}: version ${v[i]} after ${v[i - 1]}`);
  assert.equal(new Set(changes.map((c) => c.id)).size, changes.length, `${what}: a change twice`);
}

// ---- gRPC -----------------------------------------------------------------------

// A patch as plain JSON (the loader leaves defaults out).
const fromGrpc = (p) => ({
  ...p, serverVersion: p.serverVersion ?? 0, data: p.data ? fromStruct(p.data) : undefined,
  ...(p.propertyValue ? { propertyValue: fromValue(p.propertyValue) } : {}),
});

const info = async (channel) => {
  const x = await unary(grpc, 'GetChannelInfo', { channel });
  return { head: x.headVersion ?? 0, count: x.patchCount ?? 0, horizon: x.compactedThrough ?? 0 };
};
const getChanges = async (channel, fromVersion, limit = 0) => {
  const r = await unary(grpc, 'GetChanges', { channel, fromVersion, limit });
  return { patches: (r.patches ?? []).map(fromGrpc), version: r.version ?? 0, hasMore: !!r.hasMore };
};
// The whole log of `channel` after `from`.
async function logOf(channel, from = 0) {
  const out = [];
  for (let v = from; ;) {
    const page = await getChanges(channel, v);
    out.push(...page.patches);
    if (!page.hasMore) return out;
    v = page.version;
  }
}
// Pushes JSON patches; resolves to the acks.
const push = async (channel, patches) => (await unary(grpc, 'Push', {
  channel, patches: patches.map((p) => ({ ...p, ...(p.data ? { data: toStruct(p.data) } : {}),
    ...('propertyValue' in p ? { propertyValue: toValue(p.propertyValue) } : {}) })),
}, 60000)).acks;
const createNode = (id, nodeId, properties, label = 'Person') =>
  ({ id, clientId: 'grpc-writer', timestamp: Date.now(), op: 'create_node', nodeId, data: { label, properties } });
// Pushes `n` create_node patches (1,000 per call) with `pad` in each.
async function pushNodes(channel, prefix, n, pad = '') {
  for (let k = 0; k < n; k += 1000) {
    const acks = await push(channel, range(k, Math.min(n, k + 1000) - 1).map((i) =>
      createNode(`${prefix}-${i}`, `${prefix}-${i}`, pad ? { i, pad } : { i })));
    assert.ok(acks.every((a) => a.status === 'ACCEPTED'), JSON.stringify(acks.find((a) => a.status !== 'ACCEPTED')));
  }
}
// A Watch of `channel` from `fromVersion`, recording the patches.
function watch(channel, fromVersion = 0) {
  const call = grpc.Watch({ channel, fromVersion });
  const w = { patches: [], error: null, versions: () => w.patches.map((p) => p.serverVersion) };
  call.on('data', (p) => w.patches.push(fromGrpc(p)));
  call.on('error', (e) => { if (e.code !== grpcJs.status.CANCELLED) w.error = e; });
  cleanups.push(() => call.cancel());
  return w;
}

// ---- The state, folded two ways --------------------------------------------------

// documentId -> {collection, data}, from Socket.IO changes in version order.
function foldChanges(changes, start = {}) {
  const state = structuredClone(start);
  for (const c of [...changes].sort((x, y) => x.timestamp - y.timestamp)) {
    const op = c.operation;
    if (op === 'insert') state[c.documentId] = { collection: c.collection, data: structuredClone(c.data ?? {}) };
    else if (op === 'update') Object.assign(state[c.documentId].data, structuredClone(c.data ?? {}));
    else if (op === 'delete') delete state[c.documentId];
    else if (op === 'set_property') state[c.patch.targetId].data[c.patch.propertyKey] = structuredClone(c.patch.propertyValue);
    else if (op === 'remove_property') delete state[c.patch.targetId].data[c.patch.propertyKey];
    else throw new Error(`no fold for ${JSON.stringify(c)}`);
  }
  return state;
}
// The same from the log's patches (create_node, update_node, delete_node,
// set_property, remove_property on nodes).
function foldPatches(patches) {
  const state = {};
  for (const p of patches) {
    if (p.op === 'create_node') state[p.nodeId] = { collection: p.data.label, data: structuredClone(p.data.properties ?? {}) };
    else if (p.op === 'update_node') Object.assign(state[p.nodeId].data, structuredClone(p.data.properties ?? {}));
    else if (p.op === 'delete_node') delete state[p.nodeId];
    else if (p.op === 'set_property') state[p.targetId].data[p.propertyKey] = structuredClone(p.propertyValue);
    else if (p.op === 'remove_property') delete state[p.targetId].data[p.propertyKey];
    else throw new Error(`no fold for ${JSON.stringify(p)}`);
  }
  return state;
}

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

// ---- Tests ------------------------------------------------------------------------

test('default transports upgrade from polling to websocket; websocket-only and polling-only sockets work alike', async () => {
  const ch = 'sio-transports';
  const auto = await sio(bridge.http, { defaultTransports: true });
  await auto.waitFor(() => auto.socket.io.engine.transport.name === 'websocket', 10000, 'the upgrade to websocket');
  assert.deepEqual(auto.transports, ['polling', 'websocket']);
  const ws = await sio();
  assert.deepEqual(ws.transports, ['websocket']);
  // Polling only: every event goes over long-polling, as it does for a
  // default client between its handshake and the upgrade.
  const poll = await sio(bridge.http, { defaultTransports: true, upgrade: false });
  const all = [auto, ws, poll];
  for (const c of all) {
    assert.equal(c.connects[0] === true, false, 'a new socket is not "recovered"');
    assert.deepEqual(await c.join(ch), { success: true, channel: ch, timestamp: 0 });
  }
  const sent = [];
  for (const [i, c] of all.entries()) {
    const x = insert(`t${i}`, { title: `from ${c.socket.io.engine.transport.name}`, n: i, nested: { ok: [1, 'two', null] } });
    sent.push({ ...x, timestamp: accepted(await c.send(x), x), channel: ch });
  }
  assert.deepEqual(sent.map((x) => x.timestamp), [1, 2, 3]);
  for (const [i, c] of all.entries()) {
    await c.waitFor(() => c.changes.length >= 2, 10000, `socket ${i}'s changes`);
    assert.deepEqual(c.changes, sent.filter((_, k) => k !== i), `socket ${i} gets the others' changes, as they were sent`);
    assert.deepEqual(c.problems, []);
  }
  assert.equal(auto.socket.io.engine.transport.name, 'websocket');
  assert.equal(poll.socket.io.engine.transport.name, 'polling');
  await sleep(200);  // nothing more, and in particular no echo of a socket's own change
  for (const c of all) assert.equal(c.changes.length, 2);
});

test('two sockets writing at once converge on the state of the log; each sees the other\'s changes once, in version order', async () => {
  const ch = 'sio-converge';
  const a = await joined(ch);
  const b = await joined(ch, bridge.http, { defaultTransports: true });
  const rand = prng(20240601);
  const docs = range(1, 6).map((k) => `doc${k}`);
  // Colliding ops on a few documents: some are rejected (an insert of an
  // existing document, an update of a missing one), which is fine.
  const make = () => {
    const d = docs[Math.floor(rand() * docs.length)];
    const r = rand();
    if (r < 0.4) return insert(d, { title: d, n: Math.floor(rand() * 100), tags: ['x', Math.floor(rand() * 9)] });
    if (r < 0.85) return update(d, { n: Math.floor(rand() * 1000), [`k${Math.floor(rand() * 4)}`]: rand() < 0.5 });
    return remove(d);
  };
  // Each socket sends 60 changes without waiting for acks.
  const write = async (c) => {
    const batch = Array.from({ length: 60 }, make);
    const acks = await Promise.all(batch.map((x) => c.send(x)));
    const versions = [];
    acks.forEach((ack, i) => (ack?.success ? versions.push(accepted(ack, batch[i])) : rejected(ack, batch[i])));
    // One socket's changes are stored in the order it sent them.
    for (let i = 1; i < versions.length; i++) assert.ok(versions[i] > versions[i - 1], `acks out of order: ${versions}`);
    return versions.length;
  };
  const [na, nb] = await Promise.all([write(a), write(b)]);
  const { head } = await info(ch);
  assert.equal(head, na + nb, 'every version is one accepted change');
  assert.ok(na > 0 && nb > 0);
  const log = await logOf(ch);
  assert.deepEqual(log.map((p) => p.serverVersion), range(1, head));
  const expected = foldPatches(log);
  const deletes = [];
  for (const [name, c, other] of [['a', a, b], ['b', b, a]]) {
    await c.waitFor(() => c.knownVersions(ch).length >= head, 15000, `${name} knowing every version`);
    assert.deepEqual(c.knownVersions(ch), range(1, head), `${name}: each version once`);
    inOrder(c.changes, name);
    for (const got of c.changes) {
      assert.ok(![...c.own.values()].some((x) => x.id === got.id), `${name} got its own change ${got.id} back`);
      const sent = other.own.get(got.timestamp);
      assert.ok(sent, `${name} got version ${got.timestamp}, which the other did not write`);
      if (sent.operation === 'delete') {
        // What a delete's data holds is not said; its collection is (checked below).
        const pick = ({ id, documentId, operation, timestamp, userId, channel }) => ({ id, documentId, operation, timestamp, userId, channel });
        assert.deepEqual(pick(got), pick(sent));
        deletes.push(got);
      } else {
        assert.deepEqual(got, sent, 'a change arrives as it was sent, with its version as timestamp and its channel');
      }
    }
    assert.deepEqual(foldChanges(c.allChanges(ch)), expected, `${name}'s state is the log's`);
    assert.deepEqual(c.problems, []);
  }
  assert.ok(deletes.length > 0);
  assert.deepEqual(deletes.filter((x) => x.collection !== 'todos'), [], 'every delete names its collection');
});

test('a JSON /sync client, a gRPC Watch and gRPC Push share the channel: everyone sees the same versions', async () => {
  const ch = 'sio-mixed';
  const w = watch(ch, 0);
  const json = await Client.open(`${bridge.url}/sync?channel=${ch}&since=0`);
  clients.push(json);
  await json.waitFor((ms) => ms.some((m) => m.type === 'sync_state'), 5000, 'the first sync_state');
  const a = await joined(ch);
  const b = await joined(ch);

  // a: three inserts in one event.
  const batch = [insert('m1', { title: 'one' }), insert('m2', { title: 'two' }), insert('m3', { title: 'three' })];
  const acks = await a.send(batch);
  assert.deepEqual(acks.map((x, i) => accepted(x, batch[i])), [1, 2, 3]);
  // The JSON client: a node, and a property of a's document.
  json.patch({ id: 'j1', clientId: 'json-client', timestamp: Date.now(), op: 'create_node', nodeId: 'm4',
    data: { label: 'Person', properties: { name: 'Ada' } } });
  assert.equal((await json.ack('j1')).serverVersion, 4);
  json.patch({ id: 'j2', clientId: 'json-client', timestamp: Date.now(), op: 'set_property', targetType: 'node',
    targetId: 'm1', propertyKey: 'done', propertyValue: true });
  assert.equal((await json.ack('j2')).serverVersion, 5);
  // b: an update and a delete; gRPC: a node.
  const up = update('m2', { title: 'deux', n: 2 });
  assert.equal(accepted(await b.send(up), up), 6);
  const del = remove('m3');
  assert.equal(accepted(await b.send(del), del), 7);
  assert.equal((await push(ch, [createNode('g1', 'm5', { name: 'Grace' })]))[0].serverVersion, 8);
  const head = 8;

  await waitUntil(() => w.versions().length >= head || w.error, 10000, 'the Watch', () => JSON.stringify(w.versions()));
  assert.equal(w.error, null);
  assert.deepEqual(w.versions(), range(1, head));
  const idAt = new Map(w.patches.map((p) => [p.serverVersion, p.id]));
  // Socket.IO writes reach gRPC and /sync as node patches.
  assert.deepEqual(w.patches.map((p) => [p.op, p.nodeId ?? p.targetId]), [
    ['create_node', 'm1'], ['create_node', 'm2'], ['create_node', 'm3'], ['create_node', 'm4'],
    ['set_property', 'm1'], ['update_node', 'm2'], ['delete_node', 'm3'], ['create_node', 'm5']]);
  assert.deepEqual(w.patches[0].data, { label: 'todos', properties: { title: 'one' } });
  assert.deepEqual(w.patches[5].data.properties, { title: 'deux', n: 2 });
  assert.deepEqual([w.patches[0].id, w.patches[5].id], [batch[0].id, up.id], 'a change\'s id is its patch\'s id');

  // The JSON client: broadcasts of everything but its own, plus its acks.
  await json.waitFor(() => json.versions().length >= head - 2, 10000, 'the JSON client\'s broadcasts');
  const jsonSeen = [...json.ofType('patch_broadcast').map((m) => m.payload),
    ...json.ofType('patch_response').map((m) => ({ id: m.payload.patchId, serverVersion: m.payload.serverVersion }))];
  assert.deepEqual(jsonSeen.map((p) => p.serverVersion).sort((x, y) => x - y), range(1, head));
  for (const p of jsonSeen) assert.equal(p.id, idAt.get(p.serverVersion), `JSON client at ${p.serverVersion}`);
  const jsonUpdate = json.ofType('patch_broadcast').find((m) => m.payload.serverVersion === 6).payload;
  assert.equal(jsonUpdate.op, 'update_node');
  assert.equal(jsonUpdate.nodeId, 'm2');

  for (const [name, c] of [['a', a], ['b', b]]) {
    await c.waitFor(() => c.knownVersions(ch).length >= head, 10000, `${name} at the head`);
    assert.deepEqual(c.knownVersions(ch), range(1, head), name);
    for (const x of c.allChanges(ch)) assert.equal(x.id, idAt.get(x.timestamp), `${name} at ${x.timestamp}`);
    inOrder(c.changes, name);
    assert.deepEqual(c.problems, []);
  }
  // Node patches from other protocols arrive as Socket.IO changes; other
  // ops with the op name and the JSON patch.
  const at = (v) => a.changes.find((x) => x.timestamp === v);
  assert.deepEqual(at(4), { id: 'j1', collection: 'Person', documentId: 'm4', operation: 'insert', data: { name: 'Ada' },
    timestamp: 4, userId: 'json-client', channel: ch });
  assert.equal(at(5).operation, 'set_property');
  assert.equal(at(5).timestamp, 5);
  assert.equal(at(5).channel, ch);
  assert.equal(at(5).patch.op, 'set_property');
  assert.deepEqual([at(5).patch.id, at(5).patch.targetId, at(5).patch.propertyKey, at(5).patch.propertyValue], ['j2', 'm1', 'done', true]);
  assert.deepEqual(at(8), { id: 'g1', collection: 'Person', documentId: 'm5', operation: 'insert', data: { name: 'Grace' },
    timestamp: 8, userId: 'grpc-writer', channel: ch });
  const expected = foldPatches(await logOf(ch));
  assert.deepEqual(expected, { m1: { collection: 'todos', data: { title: 'one', done: true } },
    m2: { collection: 'todos', data: { title: 'deux', n: 2 } }, m4: { collection: 'Person', data: { name: 'Ada' } },
    m5: { collection: 'Person', data: { name: 'Grace' } } });
  assert.deepEqual(foldChanges(a.allChanges(ch)), expected);
  assert.deepEqual(foldChanges(b.allChanges(ch)), expected);
});

test('a change is acked only once it is committed: its version is readable over gRPC and /sync right after the ack', async () => {
  const ch = 'sio-commit';
  const a = await joined(ch);
  const check = async (x, ack) => {
    const v = accepted(ack, x);
    const page = await getChanges(ch, v - 1, 1);
    assert.equal(page.patches[0]?.serverVersion, v, `version ${v} not in the log right after its ack`);
    assert.equal(page.patches[0].id, x.id);
    assert.equal(page.patches[0].nodeId, x.documentId);
    return v;
  };
  for (let k = 0; k < 15; k++) {
    const x = k % 3 === 2 ? update(`cm${k - 1}`, { k }) : insert(`cm${k}`, { k });
    assert.equal(await check(x, await a.send(x)), k + 1);
  }
  const batch = range(1, 10).map((k) => insert(`cmb${k}`, { k }));
  const acks = await a.send(batch);
  assert.equal(acks.length, batch.length);
  for (const [i, x] of batch.entries()) await check(x, acks[i]);
  const del = remove('cmb1');
  const v = await check(del, await a.send(del));
  // A JSON client that opens right after the ack, from the version before, gets it.
  const json = await Client.open(`${bridge.url}/sync?channel=${ch}&since=${v - 1}`);
  clients.push(json);
  await json.waitFor((ms) => ms.some((m) => m.type === 'sync_state'), 5000, 'the first sync_state');
  assert.deepEqual(json.ofType('sync_state')[0].payload.patches.map((p) => [p.id, p.op, p.serverVersion]), [[del.id, 'delete_node', v]]);
});

test('sync:get_changes pages through 1,200 changes, 500 at a time', async () => {
  const ch = 'sio-paging';
  const a = await joined(ch);
  const written = [];
  for (let k = 0; k < 12; k++) {
    const batch = range(1, 100).map((i) => insert(`p${k * 100 + i}`, { n: k * 100 + i }));
    const acks = await a.send(batch);
    acks.forEach((x, i) => written.push({ ...batch[i], timestamp: accepted(x, batch[i]), channel: ch }));
  }
  assert.deepEqual(written.map((x) => x.timestamp), range(1, 1200));
  const pages = [];
  let since = 0;
  for (;;) {
    const page = await a.emit('sync:get_changes', { channel: ch, since, limit: 500 });
    assert.ok(Array.isArray(page?.changes), JSON.stringify(page).slice(0, 300));
    assert.ok(page.changes.length <= 500, `${page.changes.length} changes in a page of 500`);
    pages.push(page);
    assert.ok(pages.length <= 10, 'paging does not end');
    if (page.changes.length) assert.equal(page.latestTimestamp, page.changes.at(-1).timestamp);
    if (!page.hasMore) break;
    assert.ok(page.latestTimestamp > since, 'paging makes no progress');
    since = page.latestTimestamp;
  }
  assert.ok(pages.length >= 3, `${pages.length} pages`);
  assert.deepEqual(pages.flatMap((p) => p.changes), written);
  assert.equal(pages.at(-1).latestTimestamp, 1200);
  // From the head: nothing, at the head; by userId (the channel <userId>), the same log.
  assert.deepEqual(await a.emit('sync:get_changes', { channel: ch, since: 1200 }), { changes: [], latestTimestamp: 1200, hasMore: false });
  const some = await a.emit('sync:get_changes', { channel: ch, since: 1195, limit: 3 });
  assert.deepEqual(some.changes.map((x) => x.timestamp), [1196, 1197, 1198]);
  assert.equal(some.hasMore, true);
  assert.equal(some.latestTimestamp, 1198);
});

test('an array of changes gets one ack holding each change\'s ack in order; a resent id is a duplicate, stored once', async () => {
  const ch = 'sio-batch';
  const a = await joined(ch);
  const b = await joined(ch);
  const batch = [insert('b1'), update('ghost', { n: 1 }), insert('b2'), insert('b1', { again: true }), update('b1', { n: 2 })];
  const acks = await a.send(batch);
  assert.ok(Array.isArray(acks), `one ack holding an array: ${JSON.stringify(acks)}`);
  assert.equal(acks.length, batch.length);
  assert.deepEqual(acks.map((x) => x.changeId), batch.map((x) => x.id));
  assert.equal(accepted(acks[0], batch[0]), 1);
  rejected(acks[1], batch[1]);
  assert.equal(accepted(acks[2], batch[2]), 2);
  rejected(acks[3], batch[3]);
  assert.equal(accepted(acks[4], batch[4]), 3);

  // The same ids again: duplicates, answered with their first versions.
  const dup = (ack, c, version) => {
    const { changeId, success, duplicate, timestamp } = ack ?? {};
    assert.deepEqual({ changeId, success, duplicate, timestamp }, { changeId: c.id, success: true, duplicate: true, timestamp: version },
      JSON.stringify(ack));
  };
  dup(await a.send({ ...batch[0], data: { title: 'changed' } }), batch[0], 1);
  const b3 = insert('b3');
  const mixed = await a.send([batch[2], b3]);
  dup(mixed[0], batch[2], 2);
  assert.equal(accepted(mixed[1], b3), 4);
  // From another socket too.
  dup(await b.send(batch[4]), batch[4], 3);

  assert.deepEqual(await info(ch), { head: 4, count: 4, horizon: 0 });
  await b.waitFor(() => b.changes.length >= 4, 10000, 'b\'s changes');
  await sleep(200);
  assert.deepEqual(b.changes.map((x) => x.timestamp), [1, 2, 3, 4], 'each stored change once');
  assert.deepEqual(b.changes[0].data, { title: 'b1' });
  assert.deepEqual(a.changes, []);
});

test('join with since sends the history first; userId names a channel; a socket in two channels routes by change.channel', async () => {
  const ch = 'sio-history';
  await pushNodes(ch, 'h', 10);
  const late = await sio();
  const ack = await late.join({ channel: ch, since: 4 });
  assert.deepEqual(ack, { success: true, channel: ch, timestamp: 10 });
  await late.waitFor(() => late.changes.length >= 6, 10000, 'the history after 4');
  assert.deepEqual(late.changes.map((x) => x.timestamp), range(5, 10));
  assert.deepEqual(late.changes[0], { id: 'h-4', collection: 'Person', documentId: 'h-4', operation: 'insert',
    data: { i: 4 }, timestamp: 5, userId: 'grpc-writer', channel: ch });
  // Without since: no history, at the head; live changes follow.
  const head = await sio();
  assert.deepEqual(await head.join(ch), { success: true, channel: ch, timestamp: 10 });
  await pushNodes(ch, 'h2', 1);
  for (const c of [late, head]) await c.waitFor(() => c.changes.some((x) => x.timestamp === 11), 10000, 'version 11');
  assert.deepEqual(head.changes.map((x) => x.timestamp), [11]);
  assert.deepEqual(late.changes.map((x) => x.timestamp), range(5, 11));
  // since 0 on a fresh channel, and since at the head.
  const zero = await sio();
  assert.deepEqual(await zero.join({ channel: 'sio-history-empty', since: 0 }), { success: true, channel: 'sio-history-empty', timestamp: 0 });
  assert.deepEqual(await zero.join({ channel: ch, since: 11 }), { success: true, channel: ch, timestamp: 11 });

  // userId: the channel <userId>.
  const user = 'user-42';
  const u = await sio();
  assert.deepEqual(await u.join({ userId: user }), { success: true, channel: user, timestamp: 0 });
  const x = insert('u1');
  assert.equal(accepted(await u.send(x), x), 1, 'the socket\'s only channel takes a change without one');
  assert.equal((await logOf(user))[0].id, x.id);
  const byUser = await u.emit('sync:get_changes', { userId: user, since: 0 });
  assert.deepEqual(byUser.changes.map((c) => c.id), [x.id]);

  // A second channel: changes go where change.channel says; without one it is ambiguous.
  assert.equal((await u.join('sio-second')).success, true);
  const toSecond = insert('s1', { n: 1 }, { channel: 'sio-second' });
  const toUser = insert('u2', { n: 2 }, { channel: user });
  assert.equal(accepted(await u.send(toSecond), toSecond), 1);
  assert.equal(accepted(await u.send(toUser), toUser), 2);
  refused(await u.send(insert('nowhere')), 'a change without a channel on a socket in two');
  assert.deepEqual((await logOf('sio-second')).map((p) => p.id), [toSecond.id]);
  assert.deepEqual((await logOf(user)).map((p) => p.id), [x.id, toUser.id]);
  // It hears both channels, each change with its channel.
  await pushNodes('sio-second', 'other', 1);
  await pushNodes(user, 'other', 1);
  await u.waitFor(() => u.changes.length >= 2, 10000, 'a change of each channel');
  assert.deepEqual(u.changes.map((c) => [c.channel, c.timestamp, c.id]).sort(), [['sio-second', 2, 'other-0'], [user, 3, 'other-0']]);
  // A change for a channel the socket did not join is refused.
  refused(await u.send(insert('stray', {}, { channel: 'sio-not-joined' })), 'a change for a channel not joined');
  assert.equal((await info('sio-not-joined')).head, 0);
});

test('join with since before a compacted log: sync:reset, the state as inserts at its version, then the rest', async () => {
  const ch = 'sio-compacted';
  const w = await joined(ch);
  const writes = [...range(1, 8).map((k) => insert(`k${k}`, { k })), update('k1', { k: 100, extra: 'yes' }), remove('k2'),
    insert('k9', { k: 9 })];
  for (const x of writes) accepted(await w.send(x), x);
  await unary(grpc, 'Compact', { channel: ch, throughVersion: 9 });
  assert.equal((await info(ch)).horizon, 9);
  const tail = [update('k3', { k: 33 }), insert('k10', { k: 10 })];
  for (const x of tail) accepted(await w.send(x), x);
  const head = 13;
  // What every write adds up to.
  const truth = foldChanges([...writes, ...tail].map((x, i) => ({ ...x, timestamp: i + 1 })));

  const r = await sio();
  const ack = await r.join({ channel: ch, since: 2 });
  assert.deepEqual(ack, { success: true, channel: ch, timestamp: head });
  // Replayed as a client would: the reset clears the state, the inserts at
  // its version are the state, every version after it follows once, in order.
  const replay = () => {
    let state = null;
    let version = null;
    let snapshot = true;
    const problems = [];
    for (const [name, payload] of r.events) {
      if (name === 'sync:reset') {
        if (state !== null) problems.push('a second sync:reset');
        state = {};
        version = payload.timestamp;
        continue;
      }
      if (name !== 'sync:changes') continue;
      if (state === null) { problems.push('a change before sync:reset'); continue; }
      for (const x of payload) {
        if (snapshot && x.timestamp === version) {
          if (x.operation !== 'insert' || x.channel !== ch) problems.push(`in the state: ${JSON.stringify(x)}`);
          state[x.documentId] = { collection: x.collection, data: structuredClone(x.data) };
          continue;
        }
        snapshot = false;
        if (x.timestamp !== version + 1) problems.push(`after ${version}: ${JSON.stringify(x)}`);
        state = foldChanges([x], state);
        version = x.timestamp;
      }
    }
    return { state, version, problems };
  };
  // A version alone cannot say the state is complete (every insert of it
  // has the same one): wait for the state, then check.
  await r.waitFor(() => isDeepStrictEqual(replay(), { state: truth, version: head, problems: [] }), 10000, 'the state').catch(() => {});
  const first = r.events.find((e) => e[0] === 'sync:reset' || e[0] === 'sync:changes');
  assert.equal(first?.[0], 'sync:reset', 'sync:reset comes before any change');
  const reset = first[1];
  assert.equal(reset.channel, ch);
  assert.ok(reset.timestamp >= 9 && reset.timestamp <= head, `reset at ${reset.timestamp}`);
  const { state, version, problems } = replay();
  assert.deepEqual(problems, []);
  assert.deepEqual(state, truth);
  assert.equal(version, head);
  assert.deepEqual(r.problems, []);
  // Live changes follow as usual.
  const more = insert('k11');
  accepted(await w.send(more), more);
  await r.waitFor(() => r.changes.some((x) => x.id === more.id), 10000, 'the live change');
  assert.equal(r.changes.at(-1).timestamp, head + 1);
});

test('bad input: an error answer or sync:error, the socket stays connected, others are unaffected', async () => {
  // Namespaces other than / are refused, with the rule in the message.
  const nsp = new Sio(`${bridge.http}/admin`);
  clients.push(nsp);
  assert.match((await nsp.refused()).message, /namespace/i);
  // A malformed token in CONNECT.
  const bad = new Sio(bridge.http, { auth: { token: 'not-a-jwt' } });
  clients.push(bad);
  assert.equal((await bad.refused()).data?.code, 'unauthenticated');

  const ch = 'sio-bad';
  const bystander = await joined(ch);
  const s = await sio();
  // Before a join: a change has nowhere to go.
  refused(await s.send(insert('early')), 'a change before a join');
  assert.equal((await info(ch)).head, 0);
  for (const [payload, what] of [[{}, 'no channel'], [{ channel: 42 }, 'a number'], [{ channel: 'has space' }, 'a bad name'],
    [{ channel: ch, since: 'yesterday' }, 'since a string'], [{ channel: ch, since: -1 }, 'since < 0'], ['sio-bad', 'not an object']]) {
    refused(await s.emit('sync:join', payload), `join with ${what}`);
  }
  assert.equal((await s.join(ch)).success, true);
  const bads = [
    [{ ...insert('x1'), id: 42 }, 'a numeric id'],
    [(({ id, ...rest }) => rest)(insert('x2')), 'no id'],
    [(({ collection, ...rest }) => rest)(insert('x3')), 'no collection'],
    [(({ documentId, ...rest }) => rest)(insert('x4')), 'no documentId'],
    [{ ...insert('x6'), data: 'text' }, 'data a string'],
    [{ ...insert('x7'), documentId: { nested: true } }, 'documentId an object'],
    ['a string', 'not an object'],
    [[7, 'text'], 'an array of non-objects'],
  ];
  for (const [payload, what] of bads) {
    const ack = await s.emit('sync:change', payload);
    // A bad element of an array may be answered in its place instead.
    const one = Array.isArray(ack) ? ack.find((x) => !x.success) : ack;
    assert.equal(one?.success, false, `${what}: ${JSON.stringify(ack)}`);
    assert.ok(one.error?.code && one.error?.message, `${what}: ${JSON.stringify(ack)}`);
  }
  for (const [payload, what] of [[{ channel: ch, since: 'x' }, 'since a string'], [{ since: 0 }, 'no channel'],
    [{ channel: ch, since: 0, limit: -5 }, 'a negative limit'], [null, 'null']]) {
    refused(await s.emit('sync:get_changes', payload), `get_changes with ${what}`);
  }
  refused(await s.emit('sync:subscribe', { channel: ch }), 'an unknown event');

  // Still connected, and still working; the bystander saw only the good change.
  assert.equal(s.socket.connected, true);
  assert.deepEqual(s.disconnects, []);
  const good = insert('good');
  assert.equal(accepted(await s.send(good), good), 1);
  await bystander.waitFor(() => bystander.changes.length === 1, 5000, 'the good change');
  assert.equal(bystander.changes[0].id, good.id);
  assert.deepEqual(bystander.eventsNamed('sync:error'), []);
  assert.equal((await info(ch)).head, 1, 'nothing bad was stored');

  // The same without an ack callback: a sync:error event {code, message} for each.
  const t = await sio();
  const errorAfter = async (send, what) => {
    const before = t.eventsNamed('sync:error').length;
    send();
    await t.waitFor(() => t.eventsNamed('sync:error').length > before, 5000, `a sync:error for ${what}`);
    const [, e] = t.eventsNamed('sync:error').at(-1);
    assert.ok(typeof e?.code === 'string' && e.code.length > 0 && typeof e.message === 'string' && e.message.length > 0, JSON.stringify(e));
  };
  await errorAfter(() => t.socket.emit('sync:nope', { channel: ch }), 'an unknown event');
  await errorAfter(() => t.socket.emit('sync:join', { channel: 'has space' }), 'a bad join');
  await errorAfter(() => t.socket.emit('sync:change', insert('early')), 'a change before a join');
  assert.equal((await t.join(ch)).success, true);
  await errorAfter(() => t.socket.emit('sync:change', (({ id, ...rest }) => rest)(insert('no-id'))), 'a change without an id');
  await errorAfter(() => t.socket.emit('sync:change', 'a string'), 'a change that is a string');
  assert.equal(t.socket.connected, true);
  assert.equal((await info(ch)).head, 1, 'nothing bad was stored');
});

test('malformed Engine.IO packets close that connection only', async () => {
  const ch = 'sio-raw';
  const bystander = await joined(ch);
  const other = await joined(ch);
  // A well-formed raw session first: CONNECT carries a pid, events an offset.
  const good = await RawEio.open(bridge.port);
  assert.equal(typeof good.handshake.sid, 'string');
  assert.ok(good.handshake.pingInterval > 0 && good.handshake.pingTimeout > 0, JSON.stringify(good.handshake));
  const connect = await good.connect();
  assert.equal(connect.type, 0, JSON.stringify(connect));
  assert.equal(typeof connect.data.sid, 'string');
  assert.ok(typeof connect.data.pid === 'string' && connect.data.pid.length > 0, 'CONNECT carries a pid');
  assert.equal((await good.emit('sync:join', { channel: ch })).success, true);
  const x = insert('raw1');
  accepted(await other.send(x), x);
  await good.waitFor(() => good.changes().length === 1, 5000, 'a change');
  const [changes, offset] = good.events('sync:changes')[0];
  assert.equal(changes[0].id, x.id);
  assert.equal(typeof offset, 'string', 'the last argument is an offset');

  // Not Engine.IO at all: closed.
  for (const frame of ['x', '9{}', '', '\u0000\u00ff']) {
    const raw = await RawEio.open(bridge.port);
    await raw.connect();
    assert.equal((await raw.emit('sync:join', { channel: ch })).success, true);
    raw.send(frame);
    await raw.waitFor(() => raw.closed !== null, 5000, `the close after ${JSON.stringify(frame)}`);
  }
  // Engine.IO messages that are no Socket.IO packet: closed, or a
  // sync:error on a connection that stays usable.
  for (const frame of ['4', '4:garbage', '42["sync:change"', '42{"not":"an array"}', '49[]']) {
    const raw = await RawEio.open(bridge.port);
    await raw.connect();
    assert.equal((await raw.emit('sync:join', { channel: ch })).success, true);
    raw.send(frame);
    await raw.waitFor(() => raw.closed !== null || raw.events('sync:error').length > 0, 5000, `an answer to ${JSON.stringify(frame)}`);
    if (raw.closed === null) assert.equal((await raw.emit('sync:join', { channel: ch })).success, true, `usable after ${frame}`);
    raw.close();
  }
  // The others are still there and still served.
  const y = insert('raw2');
  accepted(await other.send(y), y);
  for (const c of [bystander]) await c.waitFor(() => c.changes.length === 2, 5000, 'the bystander\'s changes');
  await good.waitFor(() => good.changes().length === 2, 5000, 'the raw session\'s change');
  assert.equal(good.closed, null);
  assert.equal(bystander.socket.connected, true);
  assert.deepEqual(bystander.disconnects, []);
  good.close();
});

test('long events over WebSocket arrive whole, in one frame or in fragments', async () => {
  // The bridge reads the first 512 bytes of a message, then the rest: a
  // message must come out whole however its frames split it.
  const ch = 'sio-long';
  const reader = await joined(ch);
  const raw = await RawEio.open(bridge.port);
  await raw.connect();
  assert.equal((await raw.emit('sync:join', { channel: ch })).success, true);
  const whole = insert('long-whole', { title: 'w'.repeat(3000) });
  accepted(await raw.emit('sync:change', whole), whole);
  // The same event as three fragments: 300 bytes, 3 bytes, and the rest.
  const split = insert('long-split', { title: 's'.repeat(5000) });
  const id = raw.nextId++;
  const text = `42${id}${JSON.stringify(['sync:change', split])}`;
  raw.ws.send(text.slice(0, 300), { fin: false });
  raw.ws.send(text.slice(300, 303), { fin: false });
  raw.ws.send(text.slice(303), { fin: true });
  await raw.waitFor(() => raw.packets.some((p) => p.type === 3 && p.id === id), 10000, 'the fragmented event\'s ack');
  accepted(raw.packets.find((p) => p.type === 3 && p.id === id).data[0], split);
  await reader.waitFor(() => reader.changes.length === 2, 5000, 'both long changes');
  assert.deepEqual(reader.changes.map((c) => [c.id, c.data.title.length]), [[whole.id, 3000], [split.id, 5000]]);
  assert.equal(raw.closed, null);
  raw.close();
});

// One plain HTTP request to the bridge on a connection of its own.
function http(method, path, body = null, onRequest = () => {}) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: bridge.port, method, path, agent: false,
      headers: body === null ? {} : { 'content-type': 'text/plain;charset=UTF-8' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    onRequest(req);
    req.end(body ?? undefined);
  });
}

test('a polling client that drops its waiting GET ends its session at once; one that keeps it open keeps its session', async () => {
  const open = async () => {
    const hs = await http('GET', '/socket.io/?EIO=4&transport=polling');
    assert.equal(hs.status, 200, hs.text);
    return JSON.parse(hs.text.slice(1)).sid;
  };
  const post = (sid, body) => http('POST', `/socket.io/?EIO=4&transport=polling&sid=${sid}`, body);
  const [dropped, kept] = [await open(), await open()];
  // Each connects the namespace, so its next poll has the CONNECT answer
  // to take; then a second poll waits, with nothing to send.
  for (const sid of [dropped, kept]) {
    assert.equal((await post(sid, '40')).status, 200);
    assert.match((await http('GET', `/socket.io/?EIO=4&transport=polling&sid=${sid}`)).text, /^40\{/);
  }
  // Closed once the request is out: the bridge reads it, whole, before the
  // end of the stream, so the poll waits and then sees the close.
  const aborted = http('GET', `/socket.io/?EIO=4&transport=polling&sid=${dropped}`, null, (req) => {
    req.on('finish', () => req.destroy());
  }).catch((e) => e);
  const held = http('GET', `/socket.io/?EIO=4&transport=polling&sid=${kept}`);
  await aborted;
  // Well before the heartbeat (45 s) would end it, its sid is gone.
  const deadline = Date.now() + 5000;
  let answer;
  while ((answer = await post(dropped, '3')).status !== 400) {
    assert.ok(Date.now() < deadline, `the dropped session still answers: ${answer.status} ${answer.text}`);
    await sleep(50);
  }
  assert.match(answer.text, /Session ID unknown/);
  const still = await post(kept, '3');
  assert.equal(still.status, 200, 'the other session is untouched');
  assert.equal(still.text, 'ok');
  assert.equal((await post(kept, '1')).status, 200);  // close it: its poll is answered
  assert.equal((await held).status, 200);
});

test('tokens: in CONNECT auth, a header or ?token=; malformed ones are a connect_error, refused ones a failed join', async () => {
  const alice = mint('alice', ['alice:*'], ['alice:*']);
  for (const [options, how] of [[{ auth: { token: 'garbage' } }, 'auth'], [{ extraHeaders: { Authorization: 'Bearer garbage' } }, 'header'],
    [{ query: { token: 'garbage' } }, 'query'], [{ auth: { token: 'a.b' } }, 'two parts']]) {
    const c = new Sio(authBridge.http, options);
    clients.push(c);
    const err = await c.refused();
    assert.equal(err.data?.code, 'unauthenticated', `${how}: ${err.message} ${JSON.stringify(err.data)}`);
  }
  // No token at all, or one syncd refuses: the join fails with syncd's reason.
  const none = await sio(authBridge.http);
  assert.equal(refused(await none.join('alice:x'), 'no token'), 'unauthenticated');
  const forged = await sio(authBridge.http, { auth: { token: `${alice.slice(0, -4)}AAAA` } });
  assert.equal(refused(await forged.join('alice:x'), 'a bad signature'), 'unauthenticated');
  const viaAuth = await sio(authBridge.http, { auth: { token: alice } });
  assert.equal(refused(await viaAuth.join('bob:x'), 'another\'s channel'), 'forbidden');
  assert.equal(viaAuth.socket.connected, true);
  const solo = await sio(authBridge.http, { auth: { token: alice } });

  // Good tokens, three ways; writes are checked against the token too.
  assert.equal((await viaAuth.join('alice:notes')).success, true);
  const viaHeader = await sio(authBridge.http, { defaultTransports: true, extraHeaders: { Authorization: `Bearer ${alice}` } });
  assert.equal((await viaHeader.join('alice:notes')).success, true);
  const viaQuery = await sio(authBridge.http, { query: { token: alice } });
  assert.equal((await viaQuery.join('alice:notes')).success, true);
  assert.equal((await solo.join('alice:notes')).success, true);
  const n = insert('a1', { by: 'alice' }, { userId: 'alice' });
  assert.equal(accepted(await solo.send(n), n), 1);
  for (const c of [viaHeader, viaQuery]) await c.waitFor(() => c.changes.length === 1, 5000, 'alice\'s change');
  const reader = await sio(authBridge.http, { auth: { token: mint('reader', ['alice:*'], []) } });
  assert.equal((await reader.join('alice:notes')).success, true);
  assert.equal(refused(await reader.send(insert('r1', {}, { userId: 'reader' })), 'a write without write access'), 'forbidden');
  assert.equal((await info('alice:notes')).head, 1);
  // A refused join leaves no channel behind: the one joined since is the
  // socket's only channel, so a change without one goes there.
  const n2 = insert('a2', { by: 'alice' }, { userId: 'alice' });
  assert.equal(accepted(await viaAuth.send(n2), n2), 2);
});

test('recovery after a transport drop: recovered, and every change written meanwhile, in order', async () => {
  const ch = 'sio-recover';
  const writer = await joined(ch);
  const proxy = await Switch.start(bridge.port);
  cleanups.push(() => proxy.close());
  const r = await joined(ch, proxy.http);
  const write = async (n) => {
    const batch = range(1, n).map(() => insert(`r${seq}`));
    for (const [i, ack] of (await writer.send(batch)).entries()) accepted(ack, batch[i]);
  };
  await write(3);
  await r.waitFor(() => r.changes.length === 3, 5000, 'the first changes');

  // The TCP connection is reset and reconnects are refused while 20 more are written.
  proxy.refusing = true;
  proxy.cut();
  await r.waitFor(() => r.disconnects.length === 1, 5000, 'the disconnect');
  await write(20);
  assert.equal(r.socket.connected, false);
  proxy.refusing = false;
  await r.waitFor(() => r.connects.length === 2, 10000, 'the reconnect');
  assert.equal(r.connects[1], true, 'socket.recovered');
  assert.equal(r.socket.recovered, true);
  await r.waitFor(() => r.changes.length >= 23, 5000, 'the missed changes');
  // Live again: no rejoin needed.
  await write(2);
  await r.waitFor(() => r.changes.length >= 25, 5000, 'live changes after the recovery');
  assert.deepEqual(r.changes.map((x) => x.timestamp), range(1, 25));
  inOrder(r.changes, 'recovered');

  // The engine closed by the client (socket.io's own way to test this), with
  // default transports: the same.
  const d = await joined(ch, bridge.http, { defaultTransports: true });
  await d.waitFor(() => d.socket.io.engine.transport.name === 'websocket', 10000, 'the upgrade');
  await write(1);
  await d.waitFor(() => d.changes.length === 1, 5000, 'a change');
  d.socket.io.engine.close();
  await write(5);
  await d.waitFor(() => d.connects.length === 2, 10000, 'the reconnect');
  assert.equal(d.connects[1], true, 'socket.recovered');
  await d.waitFor(() => d.changes.length >= 6, 5000, 'the missed changes');
  assert.deepEqual(d.changes.map((x) => x.timestamp), range(26, 31));
  assert.deepEqual([...r.problems, ...d.problems], []);
});

test('recovery across a restart of the bridge', async () => {
  const ch = 'sio-restart';
  let b = await startBridge(syncd.grpcPort);
  const port = b.port;
  cleanups.push(() => stopProcess(b, 'sync-bridge'));
  const r = await joined(ch, b.http);
  await pushNodes(ch, 'before', 2);
  await r.waitFor(() => r.changes.length === 2, 5000, 'the first changes');
  await stopProcess(b, 'sync-bridge');
  await r.waitFor(() => r.disconnects.length === 1, 5000, 'the disconnect');
  assert.notEqual(r.disconnects[0], 'io server disconnect', 'the client must reconnect by itself');
  await pushNodes(ch, 'while-down', 30);
  b = await startBridge(syncd.grpcPort, [], port);
  await r.waitFor(() => r.connects.length === 2, 15000, 'the reconnect');
  assert.equal(r.connects[1], true, 'socket.recovered');
  await r.waitFor(() => r.changes.length >= 32, 10000, 'the missed changes');
  await pushNodes(ch, 'after', 3);
  await r.waitFor(() => r.changes.length >= 35, 10000, 'live changes after the recovery');
  assert.deepEqual(r.changes.map((x) => x.timestamp), range(1, 35));
  assert.deepEqual(r.changes.slice(2, 4).map((x) => x.documentId), ['while-down-0', 'while-down-1']);
  assert.deepEqual(r.problems, []);
  r.close();
});

test('recovery through another bridge process on the same syncd', async () => {
  const ch = 'sio-two-bridges';
  const [b1, b2] = await Promise.all([startBridge(syncd.grpcPort), startBridge(syncd.grpcPort)]);
  cleanups.push(() => stopProcess(b1, 'sync-bridge'), () => stopProcess(b2, 'sync-bridge'));
  const lb = await Switch.start(b1.port);
  cleanups.push(() => lb.close());
  const r = await joined(ch, lb.http);
  const writer = await joined(ch, b2.http);
  const write = async (n) => {
    const batch = range(1, n).map(() => insert(`tb${seq}`));
    for (const [i, ack] of (await writer.send(batch)).entries()) accepted(ack, batch[i]);
  };
  await write(4);
  await r.waitFor(() => r.changes.length === 4, 5000, 'the first changes');
  lb.refusing = true;
  lb.cut();
  await r.waitFor(() => r.disconnects.length === 1, 5000, 'the disconnect');
  await write(10);
  lb.target = b2.port;
  lb.refusing = false;
  await r.waitFor(() => r.connects.length === 2, 10000, 'the reconnect, to the other bridge');
  assert.equal(r.connects[1], true, 'socket.recovered on another bridge process');
  await r.waitFor(() => r.changes.length >= 14, 5000, 'the missed changes');
  await write(3);
  await r.waitFor(() => r.changes.length >= 17, 5000, 'live changes after the recovery');
  assert.deepEqual(r.changes.map((x) => x.timestamp), range(1, 17));
  inOrder(r.changes, 'recovered');
  assert.deepEqual(r.problems, []);
});

test('a Socket.IO reader that stops reading: bounded bridge memory, not disconnected, every change in order later', async () => {
  const ch = 'sio-slow';
  const n = 8000;
  const pad = 'x'.repeat(2500);
  // A syncd of its own (same database) with small history pages, and a
  // bridge on it: a reader catching up from the log holds one page at a
  // time, so what is measured below is the bridge's queue, not syncd's
  // --page-size.
  const pageSyncd = await startSyncd(db.url, ['--page-size', '100']);
  // Under ASan, freed memory waits in a 256 MB quarantine before reuse, so
  // the bridge's RSS would grow with traffic, not with what it holds: this
  // bridge gets a 1 MB quarantine, small beside the bound checked below.
  const asan = process.env.SYNC_SANITIZED === '1'
    ? { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=1'].filter(Boolean).join(':') } : {};
  const own = await startBridge(pageSyncd.grpcPort, ['--queue-limit', '256', '--max-read-rate', '0'], 0, asan);
  cleanups.push(async () => {
    await stopProcess(own, 'sync-bridge');
    await stopProcess(pageSyncd, 'syncd');
  });
  const slow = await RawEio.open(own.port);
  assert.equal((await slow.connect()).type, 0);
  assert.equal((await slow.emit('sync:join', { channel: ch })).success, true);
  const fast = await joined(ch, own.http);
  const pid = own.child.pid;
  // Peak RSS while `fn` runs (sampled every 20 ms).
  const peakDuring = async (fn) => {
    let peak = rssKiB(pid);
    const timer = setInterval(() => { peak = Math.max(peak, rssKiB(pid)); }, 20);
    try { await fn(); } finally { clearInterval(timer); }
    return Math.max(peak, rssKiB(pid));
  };
  // Both read: the bridge's memory reaches its working size for this traffic.
  const warm = await peakDuring(async () => {
    await pushNodes(ch, 'warm', n, pad);
    await fast.waitFor(() => fast.changes.length >= n, 30000, 'the first round at the fast reader');
    await slow.waitFor(() => slow.changes().length >= n, 30000, 'the first round at the slow reader');
  });
  // The slow one stops reading while as much again is written (~20 MB,
  // far more than the kernel's socket buffers hold).
  slow.pause();
  const paused = await peakDuring(async () => {
    await pushNodes(ch, 'flood', n, pad);
    // The other reader is not held back.
    await fast.waitFor(() => fast.changes.length >= 2 * n, 30000, 'the second round at the fast reader');
    // A while longer, for whatever the bridge would queue for the slow one.
    await sleep(1000);
  });
  console.log(`# bridge RSS KiB: peak ${warm} with both reading, ${paused} with one paused (${n} changes of ${pad.length} B); ` +
    `Engine.IO pingInterval ${slow.handshake.pingInterval} ms, pingTimeout ${slow.handshake.pingTimeout} ms`);
  assert.ok(paused - warm < 8 * 1024, `the bridge grew ${paused - warm} KiB while a reader did not read`);
  slow.resume();
  await slow.waitFor(() => slow.changes().length >= 2 * n, 60000, 'every change at the slow reader');
  assert.deepEqual(slow.changes().map((x) => x.timestamp), range(1, 2 * n));
  assert.equal(slow.closed, null, 'not disconnected');
  assert.ok(!slow.packets.some((p) => p.type === 1), 'no DISCONNECT');
  // And it is live again.
  const x = insert('after-slow');
  accepted(await fast.send(x), x);
  await slow.waitFor(() => slow.changes().some((c) => c.id === x.id), 10000, 'a live change');
  assert.deepEqual(fast.changes.map((c) => c.timestamp), range(1, 2 * n));
  slow.close();
});

// ---- Presence -----------------------------------------------------------------

// A Socket.IO socket's presence as it saw it: the members (by clientId) with
// their states, folded from its sync:presence events of `channel`.
const sioMembers = (c, channel) => {
  const members = new Map();
  for (const [name, frame, ch] of c.events) {
    if (name !== 'sync:presence' || ch !== channel) continue;
    if (frame.type === 'presence_state') {
      members.clear();
      for (const m of frame.payload.members) members.set(m.connectionId, m);
    } else if (frame.type === 'presence_leave') {
      members.delete(frame.payload.connectionId);
    } else {
      members.set(frame.payload.connectionId, frame.payload);
    }
  }
  return Object.fromEntries([...members.values()].map((m) => [m.clientId, m.state ?? {}]));
};
// The same from a JSON /sync socket's presence frames.
const wsMembers = (c) => {
  const members = new Map();
  for (const m of c.messages) {
    if (m.type === 'presence_state') {
      members.clear();
      for (const x of m.payload.members) members.set(x.connectionId, x);
    } else if (m.type === 'presence_leave') {
      members.delete(m.payload.connectionId);
    } else if (m.type === 'presence_join' || m.type === 'presence_update') {
      members.set(m.payload.connectionId, m.payload);
    }
  }
  return Object.fromEntries([...members.values()].map((m) => [m.clientId, m.state ?? {}]));
};

test('presence over Socket.IO: a join with presence gets the list and each join, update and leave; sockets that did not ask get none', async () => {
  const ch = 'sio-presence';
  const json = await Client.open(`${bridge.url}/sync?channel=${ch}&presence=1&clientId=json-watcher`);
  clients.push(json);
  const a = await sio();
  assert.equal((await a.join({ channel: ch, presence: true, clientId: 'sio-a' })).success, true);
  const quiet = await sio();
  assert.equal((await quiet.join({ channel: ch, clientId: 'sio-quiet' })).success, true);
  const expected = { 'json-watcher': {}, 'sio-a': {}, 'sio-quiet': {} };
  await a.waitFor(() => isDeepStrictEqual(sioMembers(a, ch), expected), 10000, 'the three members, seen by a');

  // a sets its state (answered), the JSON watcher sees it; the watcher's own
  // update reaches a; a newcomer comes and goes.
  assert.deepEqual(await a.emit('sync:presence_update', { state: { name: 'Ada', cursor: 'm1' } }), { success: true });
  expected['sio-a'] = { name: 'Ada', cursor: 'm1' };
  await json.waitFor(() => isDeepStrictEqual(wsMembers(json), expected), 10000, 'a\'s state, seen over /sync');
  json.send({ type: 'presence_update', payload: { state: { watching: true } } });
  expected['json-watcher'] = { watching: true };
  const newcomer = await sio();
  assert.equal((await newcomer.join({ channel: ch, clientId: 'newcomer' })).success, true);
  await a.waitFor(() => isDeepStrictEqual(sioMembers(a, ch), { ...expected, newcomer: {} }), 10000, 'the newcomer and the watcher\'s state');
  newcomer.close();
  await a.waitFor(() => isDeepStrictEqual(sioMembers(a, ch), expected), 10000, 'the newcomer gone');
  // Every event names the channel, and each member's events come in order: join, updates, leave.
  const mine = a.events.filter(([name]) => name === 'sync:presence');
  assert.ok(mine.every(([, frame, channel]) => channel === ch && typeof frame.type === 'string'));
  assert.equal(mine[0][1].type, 'presence_state', 'the list comes first');
  const newcomerId = mine.flatMap(([, f]) => (f.type === 'presence_join' && f.payload.clientId === 'newcomer' ? [f.payload.connectionId] : []));
  assert.equal(newcomerId.length, 1);
  assert.deepEqual(mine.filter(([, f]) => f.payload?.connectionId === newcomerId[0]).map(([, f]) => f.type), ['presence_join', 'presence_leave']);
  // GetPresence lists the Socket.IO sockets with their transport.
  const listed = await unary(grpc, 'GetPresence', { channel: ch });
  assert.deepEqual(listed.members.filter((m) => m.transport === 'socketio').map((m) => m.clientId).sort(), ['sio-a', 'sio-quiet']);

  // The quiet socket heard nothing until it asked; then the list, and
  // sync:presence_request brings it again.
  assert.equal(quiet.events.filter(([name]) => name === 'sync:presence').length, 0);
  assert.deepEqual(await quiet.emit('sync:presence_subscribe', { channel: ch }), { success: true });
  await quiet.waitFor(() => isDeepStrictEqual(sioMembers(quiet, ch), expected), 10000, 'the list after subscribing');
  const lists = () => quiet.events.filter(([name, f]) => name === 'sync:presence' && f.type === 'presence_state').length;
  const before = lists();
  assert.deepEqual(await quiet.emit('sync:presence_request', {}), { success: true });
  await quiet.waitFor(() => lists() === before + 1, 10000, 'the list again');
  // applied is taken (and shows as the member's position).
  assert.deepEqual(await quiet.emit('sync:applied', { version: 0 }), { success: true });

  // Bad presence input: answered with an error, the socket and the others unaffected.
  const big = { blob: 'x'.repeat(2000) };
  const refusedBig = await a.emit('sync:presence_update', { state: big });
  assert.equal(refusedBig.success, false);
  assert.equal(refusedBig.error.code, 'invalid_message');
  assert.equal((await a.emit('sync:presence_update', { state: 'not an object' })).error.code, 'invalid_message');
  assert.equal((await a.emit('sync:presence_update', { channel: 'not-joined', state: {} })).error.code, 'not_joined');
  assert.equal((await a.emit('sync:applied', { version: -1 })).error.code, 'invalid_message');
  assert.equal((await a.join({ channel: 'sio-presence-2', clientId: 'x'.repeat(200) })).error.code, 'invalid_message');
  assert.equal((await a.join({ channel: 'sio-presence-2', presence: 'yes' })).error.code, 'invalid_message');
  await sleep(300);
  assert.deepEqual(sioMembers(a, ch), expected, 'nothing changed for the others');
  assert.deepEqual(wsMembers(json), expected);
  assert.ok(a.socket.connected && quiet.socket.connected);
  assert.deepEqual(a.problems, []);
});
