// sync-bridge end to end: real PostgreSQL, syncd and sync-bridge processes,
// and real WebSocket clients speaking the JSON protocol of PROTOCOL.md.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';
import { Client, node, range } from './ws_client.mjs';
import { clientFrame, RawSocket } from './raw_ws.mjs';

let db;
let syncd;
let bridge;
const sockets = [];
const connect = async (query) => {
  const c = await Client.open(`${bridge.url}/sync?${query}`);
  sockets.push(c);
  return c;
};

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url, ['--page-size', '1000']);
  bridge = await startBridge(syncd.grpcPort, ['--max-frame-bytes', '65536']);
});

after(async () => {
  for (const s of sockets) s.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
});

test('a legacy client: history, patch_response to the sender, patch_broadcast to the others', async () => {
  const a = await connect('channel=legacy');
  const b = await connect('channel=legacy');
  for (const c of [a, b]) {
    await c.waitFor((ms) => ms.some((m) => m.type === 'sync_state'), 5000, 'the first sync_state');
    assert.deepEqual(c.ofType('sync_state')[0], { type: 'sync_state', payload: { version: 0, patches: [], hasMore: false } });
  }
  const sent = { id: 'p_1', timestamp: 1234567890, clientId: 'client_123', op: 'create_node', nodeId: 'n_1',
    data: { label: 'Person', properties: { name: 'John', age: 30, big: 9007199254740991, f: 0.1, u: 'é😀', n: null } } };
  a.patch(sent);
  assert.deepEqual(await a.ack('p_1'), { patchId: 'p_1', status: 'accepted', serverVersion: 1 });
  await b.waitFor(() => b.ofType('patch_broadcast').length === 1);
  assert.deepEqual(b.ofType('patch_broadcast')[0].payload, { ...sent, serverVersion: 1 });
  // camelCase ops and unknown fields come back as written.
  const camel = { id: 'p_2', clientId: 'client_123', op: 'setProperty', targetType: 'node', targetId: 'n_1',
    propertyKey: 'city', propertyValue: ['Paris', { zip: 75001 }], vectorClock: { a: 1 } };
  a.patch(camel);
  assert.equal((await a.ack('p_2')).status, 'accepted');
  await b.waitFor(() => b.ofType('patch_broadcast').length === 2);
  assert.deepEqual(b.ofType('patch_broadcast')[1].payload, { ...camel, serverVersion: 2 });
  // Never the sender's own patch back.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(a.ofType('patch_broadcast').length, 0);
});

test('rejected and duplicate patches', async () => {
  const a = await connect('channel=rules');
  const b = await connect('channel=rules');
  a.patch(node('r1', 'n1'));
  assert.equal((await a.ack('r1')).serverVersion, 1);
  a.patch({ id: 'r2', op: 'delete_node', nodeId: 'ghost' });
  const rejected = await a.ack('r2');
  assert.equal(rejected.status, 'rejected');
  assert.equal(rejected.code, 'not_found');
  assert.match(rejected.reason, /ghost/);
  assert.equal(rejected.serverVersion, 1);
  a.patch(node('r1', 'other'));
  await a.waitFor(() => a.ofType('patch_response').length === 3);
  assert.deepEqual(a.ofType('patch_response')[2].payload, { patchId: 'r1', status: 'ignored', serverVersion: 1 });
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(b.versions(), [1]);
});

test('bad input gets an error frame and the socket stays usable', async () => {
  const a = await connect('channel=bad');
  const other = await connect('channel=bad');
  const cases = [
    ['{nope', 'invalid_json'],
    ['[1,2,3]', 'invalid_message'],
    [JSON.stringify({ payload: {} }), 'invalid_message'],
    [JSON.stringify({ type: 'subscribe', payload: {} }), 'unknown_type'],
    [JSON.stringify({ type: 'patch', payload: { op: 'create_node', nodeId: 'x' } }), 'invalid_patch'],
    [JSON.stringify({ type: 'patch', payload: { id: 42, op: 'opaque' } }), 'invalid_patch'],
    [JSON.stringify({ type: 'patch', payload: { id: 'x', op: 'opaque', timestamp: 'yesterday' } }), 'invalid_patch'],
    [JSON.stringify({ type: 'sync_request', payload: { fromVersion: -3 } }), 'invalid_message'],
  ];
  for (const [frame, code] of cases) {
    const before = a.ofType('error').length;
    a.send(frame);
    await a.waitFor(() => a.ofType('error').length > before, 5000, `an error for ${frame}`);
    assert.equal(a.ofType('error').at(-1).payload.code, code, frame);
    assert.ok(a.ofType('error').at(-1).payload.message.length > 0);
  }
  a.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  await a.waitFor(() => a.ofType('error').length === cases.length + 1);
  assert.equal(a.ofType('error').at(-1).payload.code, 'invalid_message');
  // Semantically bad patches are rejected acks, not errors.
  a.patch({ id: 'bad-label', op: 'create_node', nodeId: 'n', data: { label: 'no spaces allowed' } });
  assert.equal((await a.ack('bad-label')).code, 'invalid_patch');
  a.patch(node('good'));
  assert.deepEqual(await a.ack('good'), { patchId: 'good', status: 'accepted', serverVersion: 1 });
  assert.equal(a.closed, null);
  await other.waitFor(() => other.versions().length === 1);
  assert.equal(other.ofType('error').length, 0);
});

test('a frame over the limit closes that socket with 1009, and only that one', async () => {
  const big = await connect('channel=big');
  const bystander = await connect('channel=big');
  big.patch({ id: 'huge', op: 'opaque', data: { blob: 'x'.repeat(70 * 1024) } });
  assert.equal((await big.closedWith()).code, 1009);
  bystander.patch(node('still-fine'));
  assert.equal((await bystander.ack('still-fine')).status, 'accepted');
});

test('a message is read whole however it arrives: long, fragmented around a ping, a few bytes at a time', async () => {
  const s = await RawSocket.open(bridge.port, '/sync?channel=pieces');
  await s.waitFor(() => s.messages().some((m) => m.type === 'sync_state'), 10000, 'the first sync_state');
  const patch = (id, text) => JSON.stringify({ type: 'patch', payload: { ...node(id), data: { label: 'Doc', properties: { text } } } });
  const acked = (id) => s.waitFor(() => s.messages().some((m) => m.type === 'patch_response' && m.payload.patchId === id),
    10000, `the ack of ${id}`).then(() => s.messages().find((m) => m.type === 'patch_response' && m.payload.patchId === id).payload);
  // Short, then far longer than the bridge's first read of a message, then short again.
  s.sendText(patch('short-1', 'a'));
  s.sendText(patch('long', 'b'.repeat(40000)));
  s.sendText(patch('short-2', 'c'));
  // One message in three fragments with a ping between them, each frame
  // arriving 7 bytes at a time.
  const text = patch('fragmented', 'd'.repeat(3000));
  await s.trickle(clientFrame(0x1, text.slice(0, 100), { fin: false }), 7);
  await s.trickle(clientFrame(0x9, 'are you there'), 7);
  await s.trickle(clientFrame(0x0, text.slice(100, 2000), { fin: false }), 7);
  await s.trickle(clientFrame(0x0, text.slice(2000)), 7);
  for (const [id, version] of [['short-1', 1], ['long', 2], ['short-2', 3], ['fragmented', 4]]) {
    assert.deepEqual(await acked(id), { patchId: id, status: 'accepted', serverVersion: version });
  }
  assert.ok(s.frames.some((f) => f.opcode === 0xa && f.text.endsWith('there')), 'the ping was answered');
  // Fragments that add up to more than --max-frame-bytes close the socket with 1009.
  s.sendText(clientFrame(0x1, patch('over', ''), { fin: false }));
  s.sendText(clientFrame(0x0, 'x'.repeat(40000), { fin: false }));
  s.sendText(clientFrame(0x0, 'x'.repeat(40000)));
  assert.equal((await s.closed())?.code, 1009);
  s.destroy();
  assert.equal(s.messages().filter((m) => m.type === 'error').length, 0, JSON.stringify(s.messages()).slice(0, 300));
});

test('a bad query gets an error and close 1008', async () => {
  for (const q of ['channel=has%20space', 'channel=ok&since=yesterday', `channel=${'x'.repeat(200)}`]) {
    const c = await connect(q);
    const closed = await c.closedWith();
    assert.equal(closed.code, 1008, q);
    assert.equal(c.ofType('error')[0].payload.code, 'invalid_message', q);
  }
});

test('two channels are isolated', async () => {
  const a = await connect('channel=iso-a');
  const b = await connect('channel=iso-b');
  const a2 = await connect('channel=iso-a');
  a.patch(node('ia'));
  b.patch(node('ib'));
  assert.equal((await a.ack('ia')).serverVersion, 1);
  assert.equal((await b.ack('ib')).serverVersion, 1);
  await a2.waitFor(() => a2.versions().length === 1);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(a2.ofType('patch_broadcast').map((m) => m.payload.id), ['ia']);
  assert.equal(b.ofType('patch_broadcast').length, 0);
});

test('4 writers and a reader see one gap-free order', async () => {
  const reader = await connect('channel=order');
  const writers = await Promise.all(range(1, 4).map(() => connect('channel=order')));
  const per = 150;
  writers.forEach((w, i) => { for (let k = 0; k < per; k++) w.patch(node(`w${i}-${k}`)); });
  const own = [];
  for (const [i, w] of writers.entries()) {
    for (let k = 0; k < per; k++) {
      const ack = await w.ack(`w${i}-${k}`);
      assert.equal(ack.status, 'accepted');
      own.push(ack.serverVersion);
    }
  }
  const n = 4 * per;
  await reader.waitFor(() => reader.versions().length >= n, 30000, 'every patch at the reader');
  assert.deepEqual(reader.versions(), range(1, n));
  for (const [i, w] of writers.entries()) {
    await w.waitFor(() => w.versions().length >= n - per, 30000, `writer ${i}'s broadcasts`);
    const mine = w.ofType('patch_response').map((m) => m.payload.serverVersion);
    assert.deepEqual([...w.versions(), ...mine].sort((x, y) => x - y), range(1, n), `writer ${i}`);
    // And in that order as they arrived: its own acks sit in their versions' places.
    // A writer that connected after the first commits gets those in its
    // opening history page; they count where they arrived too.
    const arrived = w.messages.flatMap((m) => {
      if (m.type === 'sync_state') return m.payload.patches.map((p) => p.serverVersion);
      if (m.type === 'patch_broadcast' || m.type === 'patch_response') return [m.payload.serverVersion];
      return [];
    });
    assert.deepEqual(arrived, range(1, n), `writer ${i}: acks and broadcasts in version order`);
  }
});

test('a 2,500-patch history arrives complete in pages, and reconnecting with since resumes exactly', async () => {
  const w = await connect('channel=hist');
  for (let k = 1; k <= 2500; k++) w.patch(node(`h${k}`));
  await w.waitFor(() => w.ofType('patch_response').length === 2500, 60000, '2500 acks');
  const r = await connect('channel=hist&since=0');
  await r.waitFor(() => r.versions().length >= 2500, 30000, 'the whole history');
  const pages = r.ofType('sync_state');
  assert.ok(pages.length >= 3, `${pages.length} pages`);
  pages.forEach((p, i) => {
    assert.equal(p.payload.hasMore, i < pages.length - 1);
    assert.equal(p.payload.version, p.payload.patches.at(-1).serverVersion);
  });
  assert.deepEqual(r.versions(), range(1, 2500));

  // Reconnect from 2400 while more is written: exactly 2401.. arrives.
  r.close();
  for (let k = 2501; k <= 2520; k++) w.patch(node(`h${k}`));
  const again = await connect('channel=hist&since=2400');
  await w.waitFor(() => w.ofType('patch_response').length === 2520);
  await again.waitFor(() => again.versions().length >= 120, 20000, '2401..2520');
  assert.deepEqual(again.versions(), range(2401, 2520));

  const head = await connect('channel=hist&since=head');
  await head.waitFor(() => head.ofType('sync_state').length === 1);
  assert.deepEqual(head.ofType('sync_state')[0].payload, { version: 2520, patches: [], hasMore: false });

  const req = await connect('channel=hist&since=head');
  req.send({ type: 'sync_request', payload: { fromVersion: 2510, limit: 4 } });
  await req.waitFor(() => req.versions().length === 10);
  assert.deepEqual(req.versions(), range(2511, 2520));
});

test('health, readiness, stats and the page', async () => {
  const c = await connect('channel=stats');
  await c.waitFor(() => c.ofType('sync_state').length === 1);
  const health = await fetch(`${bridge.http}/healthz`);
  assert.equal(health.status, 200);
  const ready = await fetch(`${bridge.http}/readyz`);
  assert.equal(ready.status, 200);
  const stats = await (await fetch(`${bridge.http}/stats`)).json();
  assert.ok(stats.connections >= 1);
  assert.ok(stats.channels.stats >= 1);
  assert.ok(stats.messagesIn > 0 && stats.messagesOut > 0);
  assert.equal(stats.upstream, 'ready');
  const page = await fetch(`${bridge.http}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /sync-bridge/);
  assert.equal((await fetch(`${bridge.http}/nope`)).status, 404);
});
