// The CRDT relay dialect on /crdt, end to end.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';
import { Client } from './ws_client.mjs';

let db;
let syncd;
let bridge;
before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url, ['--page-size', '7']);
  bridge = await startBridge(syncd.grpcPort);
});
after(async () => {
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
});

const sql = (q) => spawnSync('psql', [db.url, '-tAc', q], { encoding: 'utf8' }).stdout.trim();
const change = (k) => ['todos', [k], 'title', `item ${k}`, 1, k, 'site', 1, 0];

test('connected, update, ack, relay to peers, pull, and a stable server siteId', async () => {
  const a = await Client.open(`${bridge.url}/crdt?channel=user-1`);
  const b = await Client.open(`${bridge.url}/crdt?channel=user-1`);
  await a.waitFor((ms) => ms.some((m) => m.type === 'connected'));
  await b.waitFor((ms) => ms.some((m) => m.type === 'connected'));
  const connected = a.messages.find((m) => m.type === 'connected');
  assert.deepEqual(Object.keys(connected).sort(), ['channel', 'siteId', 'type', 'version']);
  assert.equal(connected.version, 0);
  assert.equal(connected.channel, 'user-1');
  const server = connected.siteId;
  assert.match(server, /^[0-9a-f]{32}$/);

  a.send({ type: 'update', changes: [change(1), change(2)], version: 1, siteId: 'site-a', channel: 'user-1' });
  await a.waitFor((ms) => ms.some((m) => m.type === 'ack'));
  assert.deepEqual(a.messages.find((m) => m.type === 'ack'), { type: 'ack', siteId: server, version: 1, channel: 'user-1' });
  await b.waitFor((ms) => ms.some((m) => m.type === 'update'));
  assert.deepEqual(b.messages.find((m) => m.type === 'update'),
    { type: 'update', changes: [change(1), change(2)], version: 1, siteId: server, channel: 'user-1' });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(a.messages.filter((m) => m.type === 'update').length, 0, 'no echo to the sender');

  // The same update again (a resend after a lost ack) is stored once.
  a.send({ type: 'update', changes: [change(1), change(2)], version: 1, siteId: 'site-a', channel: 'user-1' });
  await a.waitFor((ms) => ms.filter((m) => m.type === 'ack').length === 2);
  assert.equal(a.messages.filter((m) => m.type === 'ack')[1].version, 1);

  for (let v = 2; v <= 20; v++) {
    b.send({ type: 'update', changes: [change(100 + v)], version: v, siteId: 'site-b', channel: 'user-1' });
  }
  await b.waitFor((ms) => ms.filter((m) => m.type === 'ack').length === 19);
  assert.equal(sql("SELECT site_id || '=' || version FROM crdt_peers ORDER BY site_id"), 'site-a=1\nsite-b=20');

  // A pull after version 1: one update with everything after it (several pages).
  const c = await Client.open(`${bridge.url}/crdt?channel=user-1`);
  await c.waitFor((ms) => ms.some((m) => m.type === 'connected'));
  assert.equal(c.messages[0].version, 20);
  c.send({ type: 'pull', version: 1, siteId: 'site-c', channel: 'user-1' });
  await c.waitFor((ms) => ms.some((m) => m.type === 'update'));
  const pulled = c.messages.filter((m) => m.type === 'update');
  assert.equal(pulled.length, 1);
  assert.equal(pulled[0].version, 20);
  assert.deepEqual(pulled[0].changes, Array.from({ length: 19 }, (_, i) => change(102 + i)));

  c.send({ type: 'merge' });
  await c.waitFor((ms) => ms.some((m) => m.type === 'error'));
  assert.equal(c.messages.find((m) => m.type === 'error').payload.code, 'unknown_type');
  for (const s of [a, b, c]) s.close();

  // Restarted: the same server siteId.
  await bridge.stop();
  await syncd.stop();
  syncd = await startSyncd(db.url);
  bridge = await startBridge(syncd.grpcPort);
  const d = await Client.open(`${bridge.url}/crdt?channel=user-1`);
  await d.waitFor((ms) => ms.some((m) => m.type === 'connected'));
  assert.equal(d.messages[0].siteId, server);
  d.close();
});
