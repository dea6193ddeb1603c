// clients/js against a scripted WebSocket server (the `ws` package's, on
// port 0) that sends what a real one never would: malformed frames. Also
// event names, close() and the missing-WebSocket error. No syncd needed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { createSyncClient, EVENTS } from '../../clients/js/sync-client.js';

let server;
let url;
let onConnection = () => {};
let connections = 0;

before(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  url = `ws://127.0.0.1:${server.address().port}/sync`;
  server.on('connection', (socket) => {
    connections++;
    onConnection(socket);
  });
});
after(() => new Promise((resolve) => server.close(resolve)));

const until = async (pred, what, ms = 10000) => {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const frame = (type, payload) => JSON.stringify({ type, payload });
const start = (extra = {}) => createSyncClient({ serverUrl: url, channel: 'fake', WebSocket, reconnectInterval: 20,
  maxReconnectInterval: 40, ...extra });

test('malformed frames become error events; the connection carries on', async () => {
  const bad = [
    'not json',
    frame('sync_state', { version: 'one', patches: [] }),
    frame('sync_state', { version: 1, patches: [{ op: 'create_node', nodeId: 'x' }] }),
    frame('patch_broadcast', { op: 'create_node', nodeId: 'x' }),
    frame('patch_response', { patchId: 7, status: 'accepted' }),
    frame('presence_state', { members: 'everyone' }),
    '[1,2,3]',
  ];
  onConnection = (socket) => {
    for (const f of bad) socket.send(f);
    socket.send(Buffer.from([1, 2, 3]), { binary: true });
    socket.send(frame('sync_state', { version: 1, patches: [{ id: 'a', op: 'create_node', nodeId: 'n1',
      data: { label: 'N', properties: { ok: true } }, serverVersion: 1 }], hasMore: false }));
  };
  const c = await start();
  const errors = [];
  c.on('error', (e) => errors.push(e));
  try {
    await c.whenSynced();
    assert.equal(errors.length, bad.length + 1, JSON.stringify(errors));
    for (const e of errors) {
      assert.equal(e.code, 'invalid_frame');
      assert.match(e.message, /^the server sent a frame this client cannot read: /);
    }
    assert.match(errors[0].message, /not JSON/);
    assert.match(errors.at(-1).message, /binary frame/);
    assert.deepEqual(c.getNode('n1'), { label: 'N', properties: { ok: true } });
    assert.equal(c.getServerVersion(), 1);
    assert.ok(c.isReady());
  } finally {
    await c.close();
  }
});

test('a change event names what changed and reads the graph only when asked', async () => {
  onConnection = (socket) => socket.send(frame('sync_state', { version: 0, patches: [], hasMore: false }));
  const c = await start();
  try {
    await c.whenSynced();
    const events = [];
    c.onChange((e) => events.push(e));
    c.createNode('N', { n: 1 }, 'local');
    assert.equal(events.length, 1);
    assert.equal(events[0].patches[0].nodeId, 'local');
    assert.equal(events[0].pending, 1);
    assert.deepEqual(events[0].nodes.local, { label: 'N', properties: { n: 1 } });
    assert.ok(Object.isFrozen(c.getNode('local')), 'elements are shared, so frozen');
  } finally {
    await c.close();
  }
});

test('on() refuses an unknown event, naming the ones there are', async () => {
  const c = await start();
  try {
    assert.throws(() => c.on('nope', () => {}), (e) => e instanceof TypeError &&
      e.message === `on("nope"): no such event; the events are ${EVENTS.join(', ')}`);
    assert.deepEqual([...EVENTS], ['change', 'rejected', 'status', 'error', 'presence']);
  } finally {
    await c.close();
  }
});

test('close() resolves once the socket is closed, and nothing reconnects after it', async () => {
  // Connected.
  onConnection = () => {};
  const before = connections;
  const c = await start();
  await until(() => c.isReady(), 'connected');
  const closing = c.close();
  assert.equal(c.close(), closing, 'the same promise on every call');
  await closing;
  assert.equal(c.ws.readyState, WebSocket.CLOSED);
  assert.throws(() => c.createNode('N'), /closed/);

  // Reconnecting: the server hangs up on every socket, so the client is in its backoff.
  onConnection = (socket) => socket.terminate();
  const d = await start();
  await until(() => connections >= before + 3, 'a few reconnects');
  await d.close();
  const after = connections;
  // No timer is left to reconnect with: the backoff (20..40 ms) would have fired many times.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(connections, after, 'no reconnect after close()');
});

test('without a WebSocket class (Node has none built in) createSyncClient says what to pass', async () => {
  assert.equal(globalThis.WebSocket, undefined, 'this Node has no global WebSocket');
  await assert.rejects(createSyncClient({ serverUrl: url }), /no WebSocket implementation.*import WebSocket from 'ws'/);
});
