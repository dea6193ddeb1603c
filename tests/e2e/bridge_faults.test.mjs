// sync-bridge when things go wrong: syncd dies and comes back, clients go
// silent, the bridge is told to stop.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
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
