// sync-bridge when things go wrong: syncd dies and comes back, clients go
// silent, the bridge is told to stop.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';
import { Client, node } from './ws_client.mjs';

const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

test('syncd killed: clients get unavailable and 1013, the bridge recovers when it returns', async () => {
  const db = createDatabase();
  cleanups.push(() => db.drop());
  let syncd = await startSyncd(db.url);
  const port = syncd.grpcPort;
  const bridge = await startBridge(port);
  cleanups.push(() => bridge.stop());

  const c = await Client.open(`${bridge.url}/sync?channel=f`);
  c.patch(node('before'));
  assert.equal((await c.ack('before')).status, 'accepted');

  await syncd.stop('SIGKILL');
  const closed = await c.closedWith();
  assert.equal(closed.code, 1013);
  assert.equal(c.ofType('error').at(-1).payload.code, 'unavailable');
  assert.equal((await fetch(`${bridge.http}/readyz`)).status, 503);
  const refused = new Client(`${bridge.url}/sync?channel=f`);
  assert.equal((await refused.closedWith()).code, 1013);

  syncd = await startSyncd(db.url, [], port);
  cleanups.push(() => syncd.stop());
  const deadline = Date.now() + 20000;
  while ((await fetch(`${bridge.http}/readyz`)).status !== 200) {
    assert.ok(Date.now() < deadline, 'the bridge never became ready again');
    await new Promise((r) => setTimeout(r, 200));
  }
  const back = await Client.open(`${bridge.url}/sync?channel=f&since=0`);
  await back.waitFor(() => back.versions().length === 1);
  back.patch(node('before'));  // resent after the outage: stored once
  assert.deepEqual(await back.ack('before'), { patchId: 'before', status: 'ignored', serverVersion: 1 });
  back.patch(node('after'));
  assert.equal((await back.ack('after')).serverVersion, 2);
  back.close();
});

test('silent sockets are closed; heartbeats keep one open; SIGTERM closes with 1001', async () => {
  const db = createDatabase();
  cleanups.push(() => db.drop());
  const syncd = await startSyncd(db.url);
  cleanups.push(() => syncd.stop());
  const bridge = await startBridge(syncd.grpcPort, ['--idle-timeout', '1']);
  const silent = await Client.open(`${bridge.url}/sync?channel=idle`);
  const chatty = await Client.open(`${bridge.url}/sync?channel=idle`);
  const beat = setInterval(() => chatty.send({ type: 'heartbeat', payload: null }), 300);
  await silent.closedWith(5000);
  await new Promise((r) => setTimeout(r, 1500));
  clearInterval(beat);
  assert.equal(chatty.closed, null);
  chatty.patch(node('alive'));
  assert.equal((await chatty.ack('alive')).status, 'accepted');

  const exit = bridge.stop('SIGTERM');
  assert.equal((await chatty.closedWith()).code, 1001);
  assert.equal(await exit, 0);
});

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

test('a reader that stops reading and a writer that floods cost bounded memory and lose nothing', async () => {
  const db = createDatabase();
  cleanups.push(() => db.drop());
  const syncd = await startSyncd(db.url);
  cleanups.push(() => syncd.stop());
  const bridge = await startBridge(syncd.grpcPort, ['--queue-limit', '256']);
  cleanups.push(() => bridge.stop());
  const n = Number(process.env.FLOOD_PATCHES ?? 12000);
  const pad = 'x'.repeat(1500);

  const slow = await Client.open(`${bridge.url}/sync?channel=flood`);
  await slow.waitFor(() => slow.ofType('sync_state').length === 1);
  slow.ws._socket.pause();  // stops reading: the bridge's writes back up
  const flooder = await Client.open(`${bridge.url}/sync?channel=flood`);
  flooder.ws._socket.pause();  // sends without reading its acks
  const before = { bridge: rssKiB(bridge.child.pid), syncd: rssKiB(syncd.child.pid) };
  for (let k = 0; k < n; k++) flooder.patch(node(`f${k}`, `f${k}`, { pad }));
  await new Promise((r) => setTimeout(r, 4000));
  const during = { bridge: rssKiB(bridge.child.pid), syncd: rssKiB(syncd.child.pid) };
  console.log(`# RSS KiB before ${JSON.stringify(before)}, with ~${Math.round(n * 1.6 / 1024)} MiB in flight ${JSON.stringify(during)}`);
  assert.ok(during.bridge - before.bridge < 24 * 1024, `bridge grew ${during.bridge - before.bridge} KiB`);
  assert.ok(during.syncd - before.syncd < 48 * 1024, `syncd grew ${during.syncd - before.syncd} KiB`);

  flooder.ws._socket.resume();
  slow.ws._socket.resume();
  await flooder.waitFor(() => flooder.ofType('patch_response').length === n, 120000, 'every ack');
  assert.ok(flooder.ofType('patch_response').every((m) => m.payload.status === 'accepted'));
  await slow.waitFor(() => slow.versions().length === n, 120000, 'every patch at the slow reader');
  assert.deepEqual(slow.versions(), Array.from({ length: n }, (_, i) => i + 1));
  slow.close();
  flooder.close();
});

test('PORT sets the listening port, and WebSocket pings count as life', async () => {
  const db = createDatabase();
  cleanups.push(() => db.drop());
  const syncd = await startSyncd(db.url);
  cleanups.push(() => syncd.stop());
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
  });
  const child = spawn(process.env.SYNC_BRIDGE_BIN, ['--upstream', `127.0.0.1:${syncd.grpcPort}`, '--idle-timeout', '1'],
    { env: { ...process.env, PORT: String(port) } });
  cleanups.push(() => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }));
  let out = '';
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(out)), 10000);
    const on = (d) => { out += d; if (out.includes(`listening on port ${port}`)) { clearTimeout(t); resolve(); } };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
  });
  const pinger = await Client.open(`ws://127.0.0.1:${port}/?channel=pings`);
  const timer = setInterval(() => pinger.ws.ping(), 300);
  await new Promise((r) => setTimeout(r, 2500));
  clearInterval(timer);
  assert.equal(pinger.closed, null, 'closed although it pinged');
  pinger.close();
});
