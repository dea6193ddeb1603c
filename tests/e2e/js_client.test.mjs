// clients/js under Node against real syncd and sync-bridge processes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { createSyncClient } from '../../clients/js/sync-client.js';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';

let db;
let syncd;
let bridge;
const clients = [];

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url);
  bridge = await startBridge(syncd.grpcPort);
});
after(async () => {
  for (const c of clients) await c.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
});

const client = async (channel, extra = {}) => {
  const c = await createSyncClient({ serverUrl: `${bridge.url}/sync`, channel, WebSocket, reconnectInterval: 100,
    maxReconnectInterval: 500, heartbeatInterval: 1000, ...extra });
  clients.push(c);
  await c.whenSynced();
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
