// Authentication through sync-bridge: real syncd with --jwt-secret-file,
// tokens minted by `syncd token`, and real WebSocket clients presenting them
// as ?token=, an Authorization header or a Sec-WebSocket-Protocol entry.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createSyncClient } from '../../clients/js/sync-client.js';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';
import { Client, node } from './ws_client.mjs';

let db;
let syncd;
let bridge;
let dir;
const sockets = [];

// `syncd token` with the server's secret.
const mint = (sub, read, write, ttl = 600) => execFileSync(process.env.SYNCD_BIN, [
  'token', '--key-file', join(dir, 'secret'), '--sub', sub, '--ttl', String(ttl),
  ...read.flatMap((p) => ['--read', p]), ...write.flatMap((p) => ['--write', p]),
], { encoding: 'utf8' }).trim();

const open = async (query, protocols, options) => {
  const c = await Client.open(`${bridge.url}/sync?${query}`, protocols, options);
  sockets.push(c);
  return c;
};
const opened = (c) => c.waitFor((ms) => ms.some((m) => m.type === 'sync_state'), 5000, 'the first sync_state');
const closedWith = async (c, code) => {
  await c.waitFor((ms, self) => self.closed !== null, 10000, 'the close');
  const error = c.ofType('error')[0];
  assert.equal(error?.payload.code, code, JSON.stringify(c.messages));
  assert.equal(c.closed.code, 1008);
  return error.payload.message;
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sync-auth-'));
  writeFileSync(join(dir, 'secret'), 'e2e-secret-' + process.pid);
  db = createDatabase();
  syncd = await startSyncd(db.url, ['--jwt-secret-file', join(dir, 'secret'), '--jwt-leeway', '0']);
  // The bridge's own token: it watches channels for all its sockets.
  writeFileSync(join(dir, 'bridge-token'), mint('sync-bridge', ['*'], [], 3600));
  bridge = await startBridge(syncd.grpcPort, ['--upstream-token-file', join(dir, 'bridge-token')]);
});

after(async () => {
  for (const s of sockets) s.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

test('no token, or a bad one: unauthenticated, with the reason, then close 1008', async () => {
  assert.match(await closedWith(await open('channel=lobby'), 'unauthenticated'), /no token/);
  assert.match(await closedWith(await open('channel=lobby&token=garbage'), 'unauthenticated'), /malformed/);
  const expired = mint('alice', ['lobby'], [], 1);
  await new Promise((r) => setTimeout(r, 2100));
  assert.match(await closedWith(await open(`channel=lobby&token=${expired}`), 'unauthenticated'), /expired/);
});

test('?token=, an Authorization header and Sec-WebSocket-Protocol all carry a token; clientId comes from the subject', async () => {
  const token = mint('alice', ['alice:*'], ['alice:*']);
  const viaQuery = await open(`channel=alice:notes&token=${token}`);
  await opened(viaQuery);
  const viaHeader = await open('channel=alice:notes', undefined, { headers: { Authorization: `Bearer ${token}` } });
  await opened(viaHeader);
  const viaProtocol = await open('channel=alice:notes', ['sync', `bearer.${token}`]);
  assert.equal(viaProtocol.ws.protocol, 'sync');
  await opened(viaProtocol);
  viaQuery.patch(node('a1', undefined, { clientId: undefined }));
  await viaQuery.waitFor((ms) => ms.some((m) => m.type === 'patch_response'), 5000, 'the ack');
  assert.equal(viaQuery.ofType('patch_response')[0].payload.status, 'accepted');
  await viaProtocol.waitFor((ms) => ms.some((m) => m.type === 'patch_broadcast'), 5000, 'the broadcast');
  assert.equal(viaProtocol.ofType('patch_broadcast')[0].payload.clientId, 'alice');
});

test('a token for one channel is refused on another; a forged clientId is rejected', async () => {
  const token = mint('alice', ['alice:*', 'lobby'], ['alice:*']);
  assert.match(await closedWith(await open(`channel=bob:notes&token=${token}`), 'forbidden'), /may not read channel "bob:notes"/);
  const lobby = await open(`channel=lobby&token=${token}`);
  await opened(lobby);
  lobby.patch(node('l1', undefined, { clientId: 'alice' }));
  const mine = await open(`channel=alice:x&token=${token}`);
  await opened(mine);
  mine.patch(node('f1', undefined, { clientId: 'bob' }));
  for (const c of [lobby, mine]) {
    await c.waitFor((ms) => ms.some((m) => m.type === 'patch_response'), 5000, 'the ack');
    const ack = c.ofType('patch_response')[0].payload;
    assert.equal(ack.status, 'rejected');
    assert.equal(ack.code, 'forbidden');
  }
});

test('an auth frame refreshes the token; without it the socket closes at expiry', async () => {
  const refreshed = await open(`channel=alice:r&token=${mint('alice', ['alice:*'], ['alice:*'], 3)}`);
  const lapsing = await open(`channel=alice:r&token=${mint('alice', ['alice:*'], ['alice:*'], 3)}`);
  await opened(refreshed);
  await opened(lapsing);
  refreshed.send({ type: 'auth', payload: { token: mint('alice', ['alice:*'], ['alice:*'], 600) } });
  assert.match(await closedWith(lapsing, 'unauthenticated'), /expired/);
  assert.equal(refreshed.closed, null);
  refreshed.patch(node('after', undefined, { clientId: 'alice' }));
  await refreshed.waitFor((ms) => ms.some((m) => m.type === 'patch_response'), 5000, 'the ack');
  assert.equal(refreshed.ofType('patch_response')[0].payload.status, 'accepted');
  refreshed.send({ type: 'auth', payload: {} });
  await refreshed.waitFor((ms) => ms.some((m) => m.type === 'error'), 5000, 'the error');
  assert.equal(refreshed.ofType('error')[0].payload.code, 'invalid_message');
});

test('the JS client presents its token, and setToken keeps it connected past the first expiry', async () => {
  const c = await createSyncClient({ serverUrl: `${bridge.url}/sync`, channel: 'alice:js', clientId: 'alice',
    token: mint('alice', ['alice:*'], ['alice:*'], 3), WebSocket, reconnectInterval: 100, heartbeatInterval: 1000 });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  try {
    await c.whenSynced();
    c.setToken(mint('alice', ['alice:*'], ['alice:*'], 600));
    await new Promise((r) => setTimeout(r, 4000));
    c.createNode('Note', { n: 1 }, 'js-1');
    const deadline = Date.now() + 10000;
    while (c.getPendingPatchCount() > 0 || c.getServerVersion() < 1) {
      assert.ok(Date.now() < deadline, `not confirmed: ${JSON.stringify(errors)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.deepEqual(errors, []);
    assert.equal(c.getNode('js-1').properties.n, 1);
  } finally {
    await c.close();
  }
});
