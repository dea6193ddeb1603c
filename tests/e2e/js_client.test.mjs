// clients/js under Node against real syncd and sync-bridge processes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { createSyncClient } from '../../clients/js/sync-client.js';
import { syncClient, unary } from './fault_grpc.mjs';
import { fromStruct } from './proto_values.mjs';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';

let db;
let syncd;
let bridge;
let grpc;
const clients = [];

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url);
  bridge = await startBridge(syncd.grpcPort);
  grpc = syncClient(`127.0.0.1:${syncd.grpcPort}`);
});
after(async () => {
  for (const c of clients) await c.close();
  grpc?.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
});

const client = async (channel, extra = {}) => {
  const c = await open(channel, extra);
  await c.whenSynced();
  return c;
};

// A client that records every frame it is handed (c.frames) and every
// event (c.events: [name, value]), not yet synced.
const open = async (channel, extra = {}) => {
  const c = await createSyncClient({ serverUrl: `${bridge.url}/sync`, channel, WebSocket, reconnectInterval: 100,
    maxReconnectInterval: 500, heartbeatInterval: 1000, ...extra });
  clients.push(c);
  c.frames = [];
  const receive = c.receive.bind(c);
  c.receive = (msg) => { c.frames.push(msg); return receive(msg); };
  c.events = [];
  for (const name of ['presence', 'error', 'status']) c.on(name, (v) => c.events.push([name, v]));
  return c;
};

const until = async (pred, what, ms = 20000) => {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

const sql = (q) => spawnSync('psql', [db.url, '-tAc', q], { encoding: 'utf8' }).stdout.trim();

test('two clients converge; edits show at once and are then confirmed', async () => {
  const a = await client('converge', { clientId: 'alice' });
  const b = await client('converge', { clientId: 'bob' });
  const ada = a.createNode('Person', { name: 'Ada' });
  assert.deepEqual(a.getNode(ada), { label: 'Person', properties: { name: 'Ada' } }, 'optimistic');
  assert.equal(a.getPendingPatchCount(), 1);
  await until(() => a.getPendingPatchCount() === 0 && a.getServerVersion() === 1, 'the ack');
  await until(() => b.getNode(ada), 'the broadcast at b');
  b.setProperty('node', ada, 'born', 1815);
  const grace = b.createNode('Person', { name: 'Grace' });
  await until(() => a.getNode(grace), 'grace at a');
  const edge = a.createEdge('KNOWS', ada, grace);
  await until(() => a.getPendingPatchCount() === 0 && b.getPendingPatchCount() === 0 &&
    a.getServerVersion() === 4 && b.getServerVersion() === 4, 'both at version 4');
  assert.deepEqual(a.snapshot().nodes, b.snapshot().nodes);
  assert.deepEqual(a.getEdges(), b.getEdges());
  assert.equal(a.getNode(ada).properties.born, 1815);
  assert.deepEqual(a.getEdge(edge), { label: 'KNOWS', from: ada, to: grace, properties: {} });
});

test('a patch the server rejects is rolled back and reported', async () => {
  const a = await client('rollback');
  const rejected = [];
  a.on('rejected', (r) => rejected.push(r));
  const n = a.createNode('Person', { name: 'x' });
  a.createEdge('KNOWS', n, 'nobody', {}, 'e-bad');  // the server does not know "nobody"
  await until(() => rejected.length === 1, 'the rejection');
  assert.equal(rejected[0].code, 'not_found');
  assert.equal(rejected[0].patch.edgeId, 'e-bad');
  assert.equal(a.getEdge('e-bad'), undefined);
  assert.ok(a.getNode(n), 'the accepted patch stays');
  assert.equal(a.getPendingPatchCount(), 0);

  // Applies locally, but the server refuses the label: shown, then rolled back.
  const bad = a.createNode('not a label!', { name: 'y' });
  assert.ok(a.getNode(bad), 'optimistic');
  await until(() => rejected.length === 2, 'the second rejection');
  assert.equal(rejected[1].code, 'invalid_patch');
  assert.equal(a.getNode(bad), undefined, 'rolled back');
});

test('offline edits land exactly once after the bridge comes back, and clients converge', async () => {
  const a = await client('offline', { clientId: 'alice' });
  const b = await client('offline', { clientId: 'bob' });
  a.createNode('Doc', { title: 'draft' }, 'doc');
  await until(() => b.getNode('doc'), 'the first node at b');

  const port = bridge.port;
  await bridge.stop('SIGKILL');
  await until(() => !a.isReady() && !b.isReady(), 'both offline');
  for (let i = 0; i < 5; i++) a.setProperty('node', 'doc', `a${i}`, i);
  b.createNode('Doc', { title: 'from bob' }, 'doc-b');
  assert.equal(a.getPendingPatchCount(), 5);
  assert.equal(a.getNode('doc').properties.a4, 4, 'offline edits are visible locally');

  bridge = await startBridge(syncd.grpcPort, [], port);
  await until(() => a.getPendingPatchCount() === 0 && b.getPendingPatchCount() === 0, 'pending edits to land');
  await until(() => a.getServerVersion() === 7 && b.getServerVersion() === 7, 'both at version 7');
  assert.deepEqual(a.snapshot().nodes, b.snapshot().nodes);
  assert.equal(sql("SELECT count(*) FROM patches p JOIN channels c ON c.id = p.channel_id WHERE c.name = 'offline'"), '7');
  assert.equal(sql("SELECT count(DISTINCT patch_id) FROM patches p JOIN channels c ON c.id = p.channel_id WHERE c.name = 'offline'"), '7');
});

test('a patch stored just before the connection dropped is not applied twice', async () => {
  const a = await client('resend', { clientId: 'alice' });
  const b = await client('resend', { clientId: 'bob' });
  // Send, then lose the connection before the ack can arrive: on reconnect
  // the patch is resent with the same id and comes back ignored.
  a.createNode('Counter', { n: 0 }, 'c');
  a.ws.terminate();
  await until(() => a.isReady() && a.getPendingPatchCount() === 0, 'reconnected and answered');
  await until(() => b.getNode('c'), 'at b');
  assert.equal(a.getServerVersion(), 1);
  assert.equal(sql("SELECT count(*) FROM patches p JOIN channels c ON c.id = p.channel_id WHERE c.name = 'resend'"), '1');
  assert.deepEqual(a.getNodes(), b.getNodes());
});

test('the bridge serves the client at /sync-client.js', async () => {
  const res = await fetch(`${bridge.http}/sync-client.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /javascript/);
  assert.match(await res.text(), /export async function createSyncClient/);
});

// ---- Presence -----------------------------------------------------------------

// What two lists of members must agree on (positions move without events).
const who = (members) => members.map(({ connectionId, clientId, transport, connectedAt, state }) =>
  ({ connectionId, clientId, transport, connectedAt, state }));
const named = (c, clientId) => c.presence.find((m) => m.clientId === clientId);
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
// The frames `c` sends on its current socket from now on.
const recordSends = (c) => {
  const sent = [];
  const send = c.ws.send.bind(c.ws);
  c.ws.send = (data) => { sent.push(JSON.parse(data)); send(data); };
  return sent;
};

test('presence: two clients see each other join, update and leave', async () => {
  // The state is set before the socket opens: it is sent once the server has the connection listed.
  const a = await open('presence', { clientId: 'alice', presence: true });
  a.setPresence({ name: 'Alice', color: '#e33' });
  await a.whenSynced();
  const url = new URL(a.ws.url);
  assert.equal(url.searchParams.get('presence'), '1');
  assert.equal(url.searchParams.get('clientId'), 'alice');
  await until(() => named(a, 'alice')?.state.name === 'Alice', 'alice in her own list');
  assert.equal(a.frames.filter((m) => m.type === 'presence_state').length, 1);
  const stateAt = a.frames.findIndex((m) => m.type === 'presence_state');
  const lastPage = a.frames.findIndex((m) => m.type === 'sync_state' && !m.payload.hasMore);
  assert.ok(lastPage >= 0 && lastPage < stateAt, 'presence comes after the history');

  const b = await client('presence', { clientId: 'bob', presence: true });
  b.setPresence({ name: 'Bob', color: '#33e' });
  await until(() => named(a, 'bob')?.state.name === 'Bob', 'bob at a');
  await until(() => named(b, 'alice')?.state.name === 'Alice' && named(b, 'bob')?.state.name === 'Bob', 'both at b');
  assert.deepEqual(who(a.presence), who(b.presence));
  assert.deepEqual(a.presence.map((m) => m.clientId), ['alice', 'bob'], 'in connectedAt order');
  const bob = named(a, 'bob');
  assert.equal(bob.transport, 'ws');
  assert.equal(typeof bob.connectionId, 'string');
  assert.notEqual(bob.connectionId, named(a, 'alice').connectionId);
  const seen = a.events.filter(([e]) => e === 'presence').map(([, v]) => v);
  assert.ok(seen.some((v) => v.type === 'join' && v.member.clientId === 'bob'), 'a join event for bob');
  // (Bob's first state may come with his join or after it.)
  assert.ok(seen.some((v) => ['join', 'update'].includes(v.type) && v.member.state.name === 'Bob'), 'bob\'s state');
  assert.equal(seen.at(-1).members, a.presence, 'the event carries the current list');

  // A burst of updates: sent at most 10 a second, the latest wins, and no rate_limited error.
  const sent = recordSends(b);
  for (let i = 1; i <= 40; i++) {
    b.setPresence({ name: 'Bob', color: '#33e', cursor: i });
    if (i % 10 === 0) await pause(50);
  }
  await until(() => named(a, 'bob')?.state.cursor === 40, 'the last cursor at a');
  const updates = sent.filter((m) => m.type === 'presence_update');
  assert.ok(updates.length >= 2 && updates.length <= 5, `${updates.length} presence_update frames sent`);
  assert.equal(updates.at(-1).payload.state.cursor, 40);
  assert.ok(a.events.some(([e, v]) => e === 'presence' && v.type === 'update' && v.member.state.cursor === 40));
  assert.deepEqual(a.events.filter(([e]) => e === 'error'), []);
  assert.deepEqual(b.events.filter(([e]) => e === 'error'), []);
  assert.deepEqual(b.getPresenceState(), { name: 'Bob', color: '#33e', cursor: 40 });
  assert.throws(() => b.setPresence({ big: 'x'.repeat(1100) }), RangeError);
  assert.throws(() => b.setPresence('Bob'), TypeError);

  // A client that does not ask for presence gets none, but is listed.
  const c = await client('presence', { clientId: 'carol' });
  await until(() => named(a, 'carol') && named(b, 'carol'), 'carol listed at a and b');
  assert.deepEqual(named(a, 'carol').state, {});
  c.createNode('Note', { by: 'carol' }, 'carol-note');
  await until(() => a.getNode('carol-note') && b.getNode('carol-note'), 'carol\'s note');
  await pause(300);
  assert.deepEqual(c.frames.filter((m) => m.type.startsWith('presence_')), []);
  assert.deepEqual(c.presence, []);
  assert.deepEqual(c.events.filter(([e]) => e === 'presence'), []);
  assert.equal(new URL(c.ws.url).searchParams.get('presence'), null);

  // Leaving: a clean close leaves at once.
  await b.close();
  await until(() => !named(a, 'bob'), 'bob gone at a');
  assert.ok(a.events.some(([e, v]) => e === 'presence' && v.type === 'leave' && v.member.clientId === 'bob'));
  await c.close();
  await until(() => !named(a, 'carol'), 'carol gone at a');
  assert.deepEqual(a.presence.map((m) => m.clientId), ['alice']);
});

test('presence: the state is sent again after a reconnect; the list is empty while offline', async () => {
  const a = await client('presence-again', { clientId: 'alice', presence: true });
  const b = await client('presence-again', { clientId: 'bob', presence: true });
  a.setPresence({ name: 'Alice' });
  await until(() => named(b, 'alice')?.state.name === 'Alice', 'alice at b');
  const before = named(b, 'alice').connectionId;
  a.ws.terminate();
  await until(() => !a.isReady(), 'a offline');
  assert.deepEqual(a.presence, [], 'emptied while offline');
  assert.deepEqual(a.events.filter(([e]) => e === 'presence').at(-1)[1], { members: [], type: 'state' });
  await until(() => a.isReady() && named(a, 'bob') && named(a, 'alice')?.state.name === 'Alice', 'the list again at a');
  await until(() => named(b, 'alice')?.state.name === 'Alice' && named(b, 'alice').connectionId !== before &&
    b.presence.length === 2, 'the new connection of alice, with her state, at b');
  assert.deepEqual(who(a.presence), who(b.presence));
});

test('the client reports the version it applied: GetPresence shows its position', async () => {
  const a = await client('positions', { clientId: 'alice' });
  const b = await client('positions', { clientId: 'bob', presence: true });
  for (let i = 0; i < 5; i++) a.createNode('N', { i }, `n${i}`);
  await until(() => a.getServerVersion() === 5 && b.getServerVersion() === 5, 'both at 5');
  const list = async () => {
    const r = await unary(grpc, 'GetPresence', { channel: 'positions' });
    return (r.members ?? []).map((m) => ({ ...m, state: fromStruct(m.state) }));
  };
  let members = [];
  const deadline = Date.now() + 20000;
  while (!(members.length === 2 && members.every((m) => m.appliedVersion === 5))) {
    assert.ok(Date.now() < deadline, `positions: ${JSON.stringify(members)}`);
    await pause(100);
    members = await list();
  }
  assert.deepEqual(members.map((m) => m.clientId).sort(), ['alice', 'bob']);
  for (const m of members) assert.equal(m.lag ?? 0, 0);
  const applied = recordSends(b);
  for (let i = 5; i < 15; i++) a.createNode('N', { i }, `n${i}`);
  await until(() => b.getServerVersion() === 15, 'b at 15');
  await until(() => applied.some((m) => m.type === 'applied' && m.payload.version === 15), 'b reports 15');
  const reports = applied.filter((m) => m.type === 'applied');
  assert.ok(reports.length <= 2, `applied is throttled (${reports.length} sent)`);
});
