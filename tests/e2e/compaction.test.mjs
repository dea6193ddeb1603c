// Snapshots, compaction and channel deletion end to end: real PostgreSQL,
// syncd and sync-bridge processes; clients of the original relay protocol
// (raw WebSocket frames) and clients/js, against channels whose log was
// compacted under them. Every client's graph is held against the fold of
// the patches the server acknowledged, folded here by the rules of
// PROTOCOL.md (not by the client under test).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import { SyncClient } from '../../clients/js/sync-client.js';
import { syncClient, unary } from './fault_grpc.mjs';
import { waitFor } from './fault_probes.mjs';
import { prng } from './prng.mjs';
import { fromStruct } from './proto_values.mjs';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';
import { Client, range } from './ws_client.mjs';

// Small pages, so snapshots and histories span several.
const PAGE = 7;
let db;
let syncd;
let bridge;
let grpc;
const sockets = [];
const jsClients = [];

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url, ['--page-size', String(PAGE)]);
  // A small queue, so that a reader that stops reading falls behind soon;
  // no read-rate limit, since the slow-reader test writes megabytes from
  // one socket.
  bridge = await startBridge(syncd.grpcPort, ['--queue-limit', '32', '--max-read-rate', '0']);
  grpc = syncClient(`127.0.0.1:${syncd.grpcPort}`);
});

after(async () => {
  for (const c of jsClients) await c.close();
  for (const s of sockets) s.close();
  grpc?.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
});

const connect = async (query) => {
  const c = await Client.open(`${bridge.url}/sync?${query}`);
  sockets.push(c);
  return c;
};
const info = (channel) => unary(grpc, 'GetChannelInfo', { channel });
const compact = (channel, throughVersion) => unary(grpc, 'Compact', { channel, throughVersion });
// The loader leaves zero and false out of responses.
const horizonOf = (x) => x.compactedThrough ?? 0;
const headOf = (x) => x.headVersion ?? 0;

// clients/js with the confirmed state it had at `version` (as after an
// earlier session), connected to `channel`; `WS` may wrap the ws package.
function jsClient(channel, { version = 0, confirmed = emptyGraph(), WS = WebSocket, ...extra } = {}) {
  const c = new SyncClient({ serverUrl: `${bridge.url}/sync`, channel, WebSocket: WS, reconnectInterval: 50,
    maxReconnectInterval: 200, heartbeatInterval: 1000, ...extra });
  c.confirmed = confirmed;
  c.version = version;
  c.refresh();
  // Every frame it is handed, for the order checks.
  c.frames = [];
  const receive = c.receive.bind(c);
  c.receive = (msg) => { c.frames.push(msg); receive(msg); };
  c.connect();
  jsClients.push(c);
  return c;
}

// ---- The graph, folded by the rules of PROTOCOL.md --------------------------

const emptyGraph = () => ({ nodes: new Map(), edges: new Map() });
const copy = (v) => JSON.parse(JSON.stringify(v));
const OP = {
  createNode: 'create_node', updateNode: 'update_node', deleteNode: 'delete_node', createEdge: 'create_edge',
  updateEdge: 'update_edge', deleteEdge: 'delete_edge', setProperty: 'set_property', removeProperty: 'remove_property',
};

// Applies one stored patch; one that would be rejected changes nothing.
function apply(g, p) {
  const d = p.data ?? {};
  switch (OP[p.op] ?? p.op) {
    case 'create_node':
      if (!g.nodes.has(p.nodeId)) g.nodes.set(p.nodeId, { label: d.label, properties: copy(d.properties ?? {}) });
      break;
    case 'create_edge':
      if (!g.edges.has(p.edgeId) && g.nodes.has(d.fromNodeId) && g.nodes.has(d.toNodeId)) {
        g.edges.set(p.edgeId, { label: d.label, from: d.fromNodeId, to: d.toNodeId, properties: copy(d.properties ?? {}) });
      }
      break;
    case 'update_node':
    case 'update_edge': {
      const el = (OP[p.op] ?? p.op) === 'update_node' ? g.nodes.get(p.nodeId) : g.edges.get(p.edgeId);
      if (!el) break;
      if ('label' in d) el.label = d.label;
      Object.assign(el.properties, copy(d.properties ?? {}));
      break;
    }
    case 'delete_node':
      if (g.nodes.delete(p.nodeId)) {
        for (const [id, e] of g.edges) if (e.from === p.nodeId || e.to === p.nodeId) g.edges.delete(id);
      }
      break;
    case 'delete_edge':
      g.edges.delete(p.edgeId);
      break;
    case 'set_property':
    case 'remove_property': {
      const el = (p.targetType === 'node' ? g.nodes : g.edges).get(p.targetId);
      if (!el) break;
      if ((OP[p.op] ?? p.op) === 'set_property') el.properties[p.propertyKey] = copy(p.propertyValue);
      else delete el.properties[p.propertyKey];
      break;
    }
    default:
      break;
  }
}

const fold = (patches, g = emptyGraph()) => { for (const p of patches) apply(g, p); return g; };
// Plain objects, compared whatever the insertion order.
const plain = (g) => ({ nodes: Object.fromEntries(g.nodes), edges: Object.fromEntries(g.edges) });
const jsGraph = (c) => ({ nodes: c.getNodes(), edges: c.getEdges() });

// Waits for `graph()` to equal `expected`, then checks it (for the diff).
// A version alone says too little: every page of a snapshot has the same
// one, and a snapshot sent mid-stream has no end marker.
async function converges(graph, expected, what, ms = 30000) {
  await waitFor(() => isDeepStrictEqual(graph(), expected), ms, what).catch(() => {});
  assert.deepEqual(graph(), expected, what);
}

// The accepted patches of a channel, by version, from the acks.
class Log {
  constructor() { this.byVersion = new Map(); }
  accepted(patch, ack) {
    assert.equal(ack.status, 'accepted');
    const had = this.byVersion.get(ack.serverVersion);
    assert.ok(!had, `version ${ack.serverVersion} acked for ${patch.id} and ${had?.id}`);
    this.byVersion.set(ack.serverVersion, { ...patch, serverVersion: ack.serverVersion });
  }
  has(upTo) { return range(1, upTo).every((v) => this.byVersion.has(v)); }
  upTo(version) {
    return [...this.byVersion.values()].filter((p) => p.serverVersion <= version)
      .sort((a, b) => a.serverVersion - b.serverVersion);
  }
  state(version = Infinity) { return fold(this.upTo(version)); }
}

// Sends `patches` on a socket (kept in socket.own); records the accepted
// ones in `log`; resolves to the acks.
async function write(socket, log, patches) {
  socket.own ??= new Map();  // id -> patch, for Follower
  for (const p of patches) {
    socket.own.set(p.id, p);
    socket.patch(p);
  }
  const acks = [];
  for (const p of patches) {
    const ack = await socket.ack(p.id, 30000);
    if (ack.status === 'accepted') log.accepted(p, ack);
    acks.push(ack);
  }
  return acks;
}

// ---- A client that honours snapshots, over raw frames -------------------------

// Follows the frames one /sync socket received, from its state `start` at
// version `since`: a snapshot page replaces the state, the pages after it
// at the same version add to it, then every version after it must come
// once, in order. `own` (id -> patch) holds the socket's own patches,
// which come back as acks. Breaches of the order go to `problems`.
class Follower {
  constructor(name, since, start, own = new Map()) {
    Object.assign(this, { name, version: since, graph: start, own });
    this.seen = new Set();
    this.problems = [];
    this.snapshots = [];     // {index, version} of each snapshot's first page
    this.at = 0;             // messages taken so far
    this.collecting = null;  // V while a snapshot's pages arrive
    this.covered = 0;        // the newest snapshot's version
  }

  problem(what) { this.problems.push(`${this.name} at message ${this.at - 1}: ${what}`); }

  take(messages) {
    while (this.at < messages.length) this.one(messages[this.at++]);
    return this;
  }

  one(m) {
    const page = m.type === 'sync_state' ? m.payload : null;
    if (page?.snapshot) {
      // Only a client that claimed a version the channel never reached
      // may be taken back, and only on its first message.
      if (page.version < this.version && this.at !== 1) this.problem(`snapshot at ${page.version} after ${this.version}`);
      this.snapshots.push({ index: this.at - 1, version: page.version });
      this.graph = emptyGraph();
      this.version = page.version;
      this.collecting = page.version;
      this.covered = page.version;
    } else if (page?.version !== this.collecting) {
      this.collecting = null;
    }
    switch (m.type) {
      case 'sync_state':
        if (this.collecting !== null && !page.hasMore && page.patches.length) this.problem('a snapshot page without hasMore');
        for (const p of page.patches) {
          if (this.collecting === null) { this.patch(p); continue; }
          if (p.serverVersion !== this.collecting || !['create_node', 'create_edge'].includes(p.op)) {
            this.problem(`snapshot patch ${JSON.stringify(p)} at ${this.collecting}`);
          }
          apply(this.graph, p);
        }
        if (!page.hasMore) this.collecting = null;
        break;
      case 'patch_broadcast':
        this.patch(m.payload);
        break;
      case 'patch_response': {
        const { patchId, status, serverVersion } = m.payload;
        if (status === 'ignored') this.problem(`ignored ${patchId}`);
        if (status !== 'accepted') break;
        // An ack the socket waited for while a snapshot covered its version
        // comes after that snapshot, and changes nothing.
        if (serverVersion <= this.covered && serverVersion <= this.version) break;
        this.patch({ ...this.own.get(patchId), serverVersion });
        break;
      }
      default:
        this.problem(`unexpected ${JSON.stringify(m).slice(0, 200)}`);
    }
  }

  patch(p) {
    if (p.serverVersion !== this.version + 1) this.problem(`version ${p.serverVersion} (${p.id}) after ${this.version}`);
    if (this.seen.has(p.id)) this.problem(`${p.id} delivered twice`);
    this.seen.add(p.id);
    if (p.serverVersion <= this.version) return;
    apply(this.graph, p);
    this.version = p.serverVersion;
  }
}

// The protocol of the original relay's clients: apply every patch of every
// sync_state page and broadcast, in order, onto what it has; no snapshots.
function legacyFold(messages) {
  const g = emptyGraph();
  let version = 0;
  for (const m of messages) {
    if (m.type === 'sync_state') {
      for (const p of m.payload.patches) apply(g, p);
      version = m.payload.version;
    } else if (m.type === 'patch_broadcast') {
      apply(g, m.payload);
      version = m.payload.serverVersion;
    }
  }
  return { graph: g, version };
}

// ---- Random input -------------------------------------------------------------

// prng (prng.mjs) is seeded, so a failing run can be replayed with
// COMPACTION_SEED (COMPACTION_DEBUG=1 also prints what each reader got).

// Ops of every kind on a few ids, so that they collide: many are rejected
// (a missing node, an existing id), which is fine.
function opMaker(rand, prefix) {
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const nodeId = () => `n${Math.floor(rand() * 6)}`;
  const edgeId = () => `e${Math.floor(rand() * 5)}`;
  const value = () => pick([() => Math.floor(rand() * 1000) - 500, () => rand() < 0.5, () => null, () => 0.25,
    () => `s${Math.floor(rand() * 9)}é`, () => [1, 'two', { three: [3] }], () => ({ nested: { x: Math.floor(rand() * 9) } })])();
  const props = () => Object.fromEntries(Array.from({ length: Math.floor(rand() * 3) }, () => [pick(['a', 'b', 'c', 'd']), value()]));
  const camel = (op) => (rand() < 0.2 ? op.replace(/_(.)/g, (_, c) => c.toUpperCase()) : op);
  let n = 0;
  return () => {
    const base = { id: `${prefix}-${n++}`, timestamp: Date.now(), clientId: prefix };
    const kind = pick(['create_node', 'create_node', 'create_node', 'update_node', 'delete_node', 'create_edge',
      'create_edge', 'update_edge', 'delete_edge', 'set_property', 'set_property', 'remove_property']);
    const op = camel(kind);
    switch (kind) {
      case 'create_node': return { ...base, op, nodeId: nodeId(), data: { label: pick(['A', 'B']), properties: props() } };
      case 'update_node': return { ...base, op, nodeId: nodeId(), data: rand() < 0.3 ? { label: pick(['A', 'C']), properties: props() } : { properties: props() } };
      case 'delete_node': return { ...base, op, nodeId: nodeId() };
      case 'create_edge': return { ...base, op, edgeId: edgeId(), data: { label: 'L', fromNodeId: nodeId(), toNodeId: nodeId(), properties: props() } };
      case 'update_edge': return { ...base, op, edgeId: edgeId(), data: { properties: props() } };
      case 'delete_edge': return { ...base, op, edgeId: edgeId() };
      case 'set_property': {
        const node = rand() < 0.6;
        return { ...base, op, targetType: node ? 'node' : 'edge', targetId: node ? nodeId() : edgeId(), propertyKey: pick(['a', 'b', 'k']), propertyValue: value() };
      }
      default: {
        const node = rand() < 0.6;
        return { ...base, op, targetType: node ? 'node' : 'edge', targetId: node ? nodeId() : edgeId(), propertyKey: pick(['a', 'b', 'k']) };
      }
    }
  };
}

// ---- Tests --------------------------------------------------------------------

// Every kind of op, ids deleted and created again, edges that go with their
// node, camelCase spellings, odd values.
function history(prefix) {
  const p = (n, fields) => ({ id: `${prefix}${n}`, timestamp: 1700000000000 + n, clientId: 'relay-client', ...fields });
  return [
    p(1, { op: 'create_node', nodeId: 'ada', data: { label: 'Person', properties: { name: 'Ada', born: 1815 } } }),
    p(2, { op: 'createNode', nodeId: 'bob', data: { label: 'Person', properties: { name: 'Bob' } } }),
    p(3, { op: 'create_node', nodeId: 'tmp', data: { label: 'Temp', properties: {} } }),
    p(4, { op: 'create_edge', edgeId: 'knows', data: { label: 'KNOWS', fromNodeId: 'ada', toNodeId: 'bob', properties: { since: 1830 } } }),
    p(5, { op: 'createEdge', edgeId: 'gone-with-tmp', data: { label: 'TMP', fromNodeId: 'tmp', toNodeId: 'ada', properties: {} } }),
    p(6, { op: 'set_property', targetType: 'node', targetId: 'ada', propertyKey: 'tags', propertyValue: ['math', { deep: [null, 1.5] }] }),
    p(7, { op: 'setProperty', targetType: 'edge', targetId: 'knows', propertyKey: 'weight', propertyValue: 0.5 }),
    p(8, { op: 'delete_node', nodeId: 'tmp' }),
    p(9, { op: 'update_node', nodeId: 'bob', data: { label: 'Engineer', properties: { name: 'Bob B.', city: 'Zürich 😀' } } }),
    p(10, { op: 'remove_property', targetType: 'node', targetId: 'ada', propertyKey: 'born' }),
    p(11, { op: 'create_node', nodeId: 'tmp', data: { label: 'Again', properties: { n: 2 } } }),
    p(12, { op: 'update_edge', edgeId: 'knows', data: { properties: { since: 1833 } } }),
    p(13, { op: 'create_edge', edgeId: 'loop', data: { label: 'SELF', fromNodeId: 'tmp', toNodeId: 'tmp', properties: { n: null } } }),
    p(14, { op: 'removeProperty', targetType: 'edge', targetId: 'knows', propertyKey: 'weight' }),
    p(15, { op: 'create_edge', edgeId: 'doomed', data: { label: 'X', fromNodeId: 'bob', toNodeId: 'ada', properties: {} } }),
    p(16, { op: 'delete_edge', edgeId: 'doomed' }),
    p(17, { op: 'updateNode', nodeId: 'ada', data: { properties: { big: 9007199254740991, neg: -3 } } }),
    p(18, { op: 'set_property', targetType: 'node', targetId: 'tmp', propertyKey: 'empty', propertyValue: {} }),
  ];
}

test('a relay-protocol client from since=0 on a compacted channel ends with the graph of one that saw every patch', async () => {
  const log = new Log();
  const early = await connect('channel=relay&since=0');   // sees every patch as it is made
  const writer = await connect('channel=relay&since=0');
  await writer.waitFor(() => writer.ofType('sync_state').length === 1);
  const patches = history('r');
  const acks = await write(writer, log, patches);
  assert.ok(acks.every((a) => a.status === 'accepted'), JSON.stringify(acks.filter((a) => a.status !== 'accepted')));

  const compacted = await compact('relay', 12);
  assert.deepEqual([horizonOf(compacted), headOf(compacted)], [12, 18]);
  const late = await connect('channel=relay&since=0');
  await late.waitFor(() => late.ofType('sync_state').some((m) => !m.payload.hasMore), 20000, 'the history');
  const first = late.ofType('sync_state')[0].payload;
  assert.equal(first.snapshot, true, 'history from before the horizon starts with a snapshot');
  assert.ok(late.ofType('sync_state').length >= 2, 'the snapshot spans pages');

  // Live patches after it, which both clients apply the same way.
  const more = [
    { id: 'r19', op: 'delete_node', nodeId: 'bob' },
    { id: 'r20', op: 'create_node', nodeId: 'bob', data: { label: 'Person', properties: { reborn: true } } },
    { id: 'r21', op: 'set_property', targetType: 'edge', targetId: 'loop', propertyKey: 'n', propertyValue: 1 },
  ];
  await write(writer, log, more);
  for (const c of [early, late]) await c.waitFor(() => legacyFold(c.messages).version === 21, 20000, 'version 21');

  const expected = plain(log.state());
  assert.deepEqual(plain(legacyFold(early.messages).graph), expected, 'the client that saw every patch');
  assert.deepEqual(plain(legacyFold(late.messages).graph), expected, 'the client that got a snapshot');
  assert.deepEqual(Object.keys(expected.edges), ['loop'], 'knows went with bob');

  // A compacted patch id is still known: a resend is ignored, at its version.
  writer.patch(patches[2]);
  await writer.waitFor(() => writer.ofType('patch_response').length === patches.length + more.length + 1);
  assert.deepEqual(writer.ofType('patch_response').at(-1).payload, { patchId: 'r3', status: 'ignored', serverVersion: 3 });
});

test('sync_request from before the horizon: a snapshot first page, then the tail', async () => {
  const log = new Log();
  const writer = await connect('channel=req');
  await writer.waitFor(() => writer.ofType('sync_state').length === 1);
  const make = opMaker(prng(7), 'q');
  await write(writer, log, range(1, 60).map(() => make()));
  // Enough state for a snapshot of several pages.
  await write(writer, log, range(1, 12).map((i) => ({ id: `q-x${i}`, op: 'create_node', nodeId: `x${i}`, data: { label: 'X', properties: { i } } })));
  const head = Math.max(...log.byVersion.keys());
  const c = await compact('req', head - 10);
  assert.equal(horizonOf(c), head - 10);
  assert.equal(horizonOf(await compact('req', 2)), head - 10, 'the horizon never goes down');
  await assert.rejects(compact('req', head + 1), (e) => e.code === 3, 'past the head: INVALID_ARGUMENT');
  await assert.rejects(unary(grpc, 'GetChanges', { channel: 'req', fromVersion: 1 }), (e) => e.code === 11,
    'GetChanges before the horizon: OUT_OF_RANGE');

  const r = await connect('channel=req&since=head');
  await r.waitFor(() => r.ofType('sync_state').length === 1);
  const opening = r.messages.length;
  r.send({ type: 'sync_request', payload: { fromVersion: 3 } });
  // More writes while the answer is read: they come as its tail or as broadcasts.
  await write(writer, log, range(1, 8).map(() => make()));
  const final = Math.max(...log.byVersion.keys());
  await r.waitFor(() => r.messages.slice(opening).some((m) => m.type === 'sync_state' && !m.payload.hasMore), 20000, 'the answer');
  const answer = r.messages.slice(opening).filter((m) => m.type === 'sync_state').map((m) => m.payload);
  assert.equal(answer[0].snapshot, true);
  const v = answer[0].version;
  assert.ok(v >= head && v <= final, `snapshot at ${v}`);
  // The snapshot's pages say hasMore; an empty tail is one empty last page at V.
  let k = 1;
  while (k < answer.length && answer[k].version === v && answer[k].hasMore) k++;
  const snap = answer.slice(0, k);
  assert.ok(snap.length >= 2, `a snapshot of ${PAGE}-patch pages: ${snap.length}`);
  assert.ok(answer.slice(1).every((p) => !p.snapshot), 'only the first page is marked');
  assert.deepEqual(plain(fold(snap.flatMap((p) => p.patches))), plain(log.state(v)), 'the snapshot is the fold at its version');
  // The tail: the versions after V, gap-free, ending at the last page.
  const tail = answer.slice(k).flatMap((p) => p.patches.map((q) => q.serverVersion));
  assert.deepEqual(tail, range(v + 1, v + tail.length));
  assert.equal(answer.at(-1).hasMore, false);
  assert.ok(answer.slice(k, -1).every((p) => p.hasMore && p.patches.length), 'tail pages');

  // A since=1 client gets the same state on connect; its follower checks the order.
  const c1 = await connect('channel=req&since=1');
  const f = new Follower('since=1', 1, log.state(1));
  await converges(() => plain(f.take(c1.messages).graph), plain(log.state()), 'since=1');
  assert.deepEqual(f.problems, []);
  assert.equal(f.snapshots[0]?.index, 0, 'a snapshot first');
  assert.equal(f.version, final);
});

test('clients/js keeps its pending edits on top of a snapshot, and drops what the server rejects', async () => {
  const log = new Log();
  const writer = await connect('channel=pending');
  await writer.waitFor(() => writer.ofType('sync_state').length === 1);
  await write(writer, log, [
    { id: 'w1', op: 'create_node', nodeId: 'doc', data: { label: 'Doc', properties: { title: 'draft' } } },
    { id: 'w2', op: 'create_node', nodeId: 'victim', data: { label: 'Doc', properties: {} } },
  ]);
  const c = jsClient('pending', { clientId: 'js' });
  await c.whenSynced();
  await waitFor(() => c.getServerVersion() === 2, 10000, 'version 2');

  // Offline: the client cannot reach the bridge until told to reconnect.
  c.reconnectInterval = c.maxReconnectInterval = 3600000;
  c.ws.terminate();
  await waitFor(() => !c.isReady(), 5000, 'offline');
  c.setProperty('node', 'doc', 'mine', 1);
  c.setProperty('node', 'victim', 'mine', 2);   // the node is deleted meanwhile: rejected
  c.createNode('Doc', { by: 'js' }, 'js-node');
  assert.equal(c.getPendingPatchCount(), 3);

  // Meanwhile the log moves on and is compacted past the client's version.
  const more = [
    { id: 'w3', op: 'delete_node', nodeId: 'victim' },
    { id: 'w4', op: 'set_property', targetType: 'node', targetId: 'doc', propertyKey: 'title', propertyValue: 'final' },
    ...range(1, 15).map((i) => ({ id: `w-n${i}`, op: 'create_node', nodeId: `x${i}`, data: { label: 'X', properties: { i } } })),
  ];
  await write(writer, log, more);
  const head = Math.max(...log.byVersion.keys());
  await compact('pending', head);

  const rejected = [];
  c.on('rejected', (r) => rejected.push(r.patch.id));
  const views = [];
  c.onChange((s) => views.push(s));
  clearTimeout(c.reconnectTimer);
  c.connect();
  await waitFor(() => c.getPendingPatchCount() === 0, 20000, 'the pending patches answered');
  await waitFor(() => c.getServerVersion() === head + 2, 20000, `version ${head + 2}`);
  assert.equal(rejected.length, 1);
  const snapshotFrame = c.frames.find((m) => m.type === 'sync_state' && m.payload.snapshot);
  assert.ok(snapshotFrame, 'the client got a snapshot');
  // Once the snapshot was taken in (its last page; no ack yet), the
  // pending edits were still on top.
  const during = views.filter((s) => s.version === head && s.pending === 3).at(-1);
  assert.ok(during, 'a view at the snapshot with pending edits');
  assert.equal(during.nodes.doc.properties.mine, 1);
  assert.equal(during.nodes['js-node'].properties.by, 'js');
  assert.equal(during.nodes.doc.properties.title, 'final');

  // The writer saw the client's two accepted patches: the same graph on both.
  await writer.waitFor(() => writer.ofType('patch_broadcast').length === 2);
  for (const b of writer.ofType('patch_broadcast')) {
    const { serverVersion, ...patch } = b.payload;
    log.accepted(patch, { status: 'accepted', serverVersion });
  }
  assert.deepEqual(jsGraph(c), plain(log.state()));
  assert.equal(c.getNode('victim'), undefined);

  // And a sync_request of its own, from before the horizon, changes nothing.
  c.send({ type: 'sync_request', payload: { fromVersion: 1 } });
  const frames = c.frames.length;
  await waitFor(() => c.frames.slice(frames).some((m) => m.type === 'sync_state' && !m.payload.hasMore), 10000, 'the answer');
  assert.equal(c.frames[frames].payload.snapshot, true);
  assert.equal(c.getServerVersion(), head + 2);
  assert.deepEqual(jsGraph(c), plain(log.state()));
});

test('a socket that fell behind across a compaction gets a snapshot mid-stream, then the rest', async () => {
  const log = new Log();
  const writer = await connect('channel=behind');
  await writer.waitFor(() => writer.ofType('sync_state').length === 1);
  await write(writer, log, range(1, 20).flatMap((i) => [
    { id: `b-n${i}`, op: 'create_node', nodeId: `n${i}`, data: { label: 'N', properties: { i } } },
    ...(i > 1 ? [{ id: `b-e${i}`, op: 'create_edge', edgeId: `e${i}`, data: { label: 'E', fromNodeId: `n${i - 1}`, toNodeId: `n${i}`, properties: {} } }] : []),
  ]));
  const raw = await connect('channel=behind&since=0');
  const rawView = new Follower('raw', 0, emptyGraph());
  const js = jsClient('behind', { clientId: 'js-behind' });
  await js.whenSynced();
  await raw.waitFor(() => rawView.take(raw.messages).version === 39, 10000, 'raw at 39');

  // Each round: the readers stop reading, megabytes are written (each
  // patch overwrites one property, so the state stays small), the log is
  // compacted to the head, and the readers read again. Once a reader's
  // bridge queue overflowed (past what the kernel's socket buffers hold:
  // 9 MB was plenty here; later rounds write more) it is served from the
  // log, which now starts past it.
  const pad = 'x'.repeat(60000);
  let n = 0;
  let head = 0;
  const midSnapshot = (frames) => frames.some((m, i) => i > 0 && m.payload?.snapshot);
  for (let round = 1; round <= 4; round++) {
    raw.ws._socket.pause();
    js.ws._socket.pause();
    // Pending when the snapshot comes: its ack is held back until then.
    js.setProperty('node', 'n1', 'js', round);
    const batch = range(1, 150 * round).map(() => ({ id: `big-${++n}`, op: 'set_property', targetType: 'node', targetId: 'n2',
      propertyKey: 'pad', propertyValue: `${pad}${n}` }));
    await write(writer, log, batch);
    await compact('behind', headOf(await info('behind')));
    raw.ws._socket.resume();
    js.ws._socket.resume();
    await waitFor(() => js.getPendingPatchCount() === 0, 30000, 'the js patch answered');
    head = headOf(await info('behind'));
    await raw.waitFor(() => rawView.take(raw.messages).version >= head, 30000, `raw at ${head}`);
    await waitFor(() => js.getServerVersion() >= head, 30000, `js at ${head}`);
    if (midSnapshot(raw.messages) && midSnapshot(js.frames)) break;
  }
  console.log(`# ${n} large patches written before both readers fell behind`);
  // The js client's patches reach the writer as broadcasts.
  const writerView = new Follower('writer', 0, emptyGraph(), writer.own);
  await writer.waitFor(() => writerView.take(writer.messages).version === head, 30000, `writer at ${head}`);
  for (const b of writer.ofType('patch_broadcast')) {
    const { serverVersion, ...patch } = b.payload;
    log.accepted(patch, { status: 'accepted', serverVersion });
  }
  assert.ok(log.has(head), 'every version recorded');
  const expected = plain(log.state());

  assert.ok(midSnapshot(raw.messages), `no snapshot mid-stream after ${n} patches: the raw socket never fell behind`);
  const mid = rawView.snapshots.find((x) => x.index > 0);
  assert.ok(raw.messages.slice(1, mid.index).some((m) => m.type === 'patch_broadcast'), 'live before the snapshot');
  await converges(() => plain(rawView.take(raw.messages).graph), expected, 'the raw reader');
  assert.deepEqual(rawView.problems, []);

  assert.ok(midSnapshot(js.frames), 'the js client got a snapshot mid-stream');
  await converges(() => jsGraph(js), expected, 'the js client');
  assert.equal(js.getServerVersion(), head);
  const own = new Map([...log.byVersion.values()].map((p) => [p.id, p]));
  const jsView = new Follower('js', 0, emptyGraph(), own).take(js.frames);
  assert.deepEqual(jsView.problems, []);
  assert.deepEqual(plain(jsView.graph), expected, 'the js client\'s frames');
  await converges(() => plain(writerView.take(writer.messages).graph), expected, 'the writer');
  assert.deepEqual(writerView.problems, []);
});

// A state no channel ever had, for clients that claim a version past the
// head: the snapshot they get must replace it.
const poisoned = () => fold([{ op: 'create_node', nodeId: 'poison', data: { label: 'Never', properties: {} } }]);

test('property: random writers, compactions and readers from every kind of since agree with the fold of the acks', async () => {
  const seed = Number(process.env.COMPACTION_SEED ?? Date.now() % 1000000007);
  console.log(`# seed ${seed} (COMPACTION_SEED=${seed} makes the same choices; timing still varies)`);
  const schedule = prng(seed);
  const PER_WRITER = 150;
  const KINDS = ['zero', 'below', 'at', 'between', 'head', 'ahead'];
  const channels = ['prop-a', 'prop-b'].map((name, c) => ({ name, log: new Log(), acks: 0, writing: true,
    writers: [], readers: [], compactions: [], ops: [0, 1].map((w) => opMaker(prng(seed + 10 * c + w), `${name}-w${w}`)) }));
  const total = 2 * PER_WRITER;
  const between = (lo, hi) => lo + Math.floor(schedule() * (hi - lo + 1));  // lo..hi

  async function runWriter(ch, w) {
    const socket = await connect(`channel=${ch.name}`);
    ch.writers.push(socket);
    await socket.waitFor(() => socket.ofType('sync_state').length === 1);
    for (let sent = 0; sent < PER_WRITER;) {
      const batch = range(1, Math.min(PER_WRITER - sent, between(1, 6))).map(() => ch.ops[w]());
      await write(socket, ch.log, batch);
      sent += batch.length;
      ch.acks += batch.length;
    }
  }

  // Compacts at random points of the writing, and once after it half the time.
  async function runCompactions(ch) {
    const points = range(1, 4).map(() => between(1, total)).sort((a, b) => a - b);
    if (schedule() < 0.5) points.push(Infinity);
    for (const point of points) {
      await waitFor(() => ch.acks >= point || !ch.writing, 30000, `${point} acks on ${ch.name}`);
      const before = await info(ch.name);
      const through = between(horizonOf(before), headOf(before));
      const after = await compact(ch.name, through);
      assert.equal(horizonOf(after), Math.max(through, horizonOf(before)));
      ch.compactions.push([horizonOf(before), through, headOf(after)]);
    }
  }

  // Each kind of since, over raw frames and through clients/js, once each,
  // at a random point (some after the writing).
  async function runReaders(ch) {
    const plan = KINDS.flatMap((kind) => ['raw', 'js'].map((flavor) => ({ kind, flavor, point: between(0, total * 1.2) })))
      .sort((a, b) => a.point - b.point);
    for (const r of plan) {
      await waitFor(() => ch.acks >= r.point || !ch.writing, 30000, `${r.point} acks on ${ch.name}`);
      const at = await info(ch.name);
      const [horizon, head] = [horizonOf(at), headOf(at)];
      r.horizon = horizon;
      r.since = {
        zero: 0,
        below: horizon > 1 ? between(1, horizon - 1) : 0,
        at: horizon,
        between: head - horizon > 1 ? between(horizon + 1, head - 1) : head,
        head,
        // Past the head; while writers run, past any head they can reach.
        ahead: (ch.writing ? total : head) + 5,
      }[r.kind];
      r.name = `${ch.name} ${r.flavor} ${r.kind} since=${r.since} (horizon ${horizon}, head ${head})`;
      if (r.flavor === 'raw') {
        r.socket = await connect(`channel=${ch.name}&since=${r.since}`);
      } else {
        // As after an earlier session that ended at `since`.
        if (r.kind !== 'ahead') await waitFor(() => ch.log.has(r.since), 30000, `the acks up to ${r.since}`);
        r.client = jsClient(ch.name, { version: r.since, confirmed: r.kind === 'ahead' ? poisoned() : ch.log.state(r.since) });
      }
      ch.readers.push(r);
    }
  }

  await Promise.all(channels.map(async (ch) => {
    const compactions = runCompactions(ch);
    const readers = runReaders(ch);
    await Promise.all([runWriter(ch, 0), runWriter(ch, 1)]);
    ch.writing = false;
    await Promise.all([compactions, readers]);
  }));

  for (const ch of channels) {
    const at = await info(ch.name);
    const head = headOf(at);
    console.log(`# ${ch.name}: head ${head}, horizon ${horizonOf(at)}, compactions [from, through, head] ${JSON.stringify(ch.compactions)}`);
    assert.equal(ch.log.byVersion.size, head, 'one accepted ack per version');
    assert.ok(ch.log.has(head));
    assert.ok(head > total / 4, `${head} of ${total} patches accepted`);
    const expected = plain(ch.log.state());

    for (const r of ch.readers) {
      const start = r.kind === 'ahead' ? poisoned() : ch.log.state(r.since);
      const view = new Follower(r.name, r.since, start);
      if (r.flavor === 'raw') {
        await converges(() => plain(view.take(r.socket.messages).graph), expected, r.name);
      } else {
        await converges(() => jsGraph(r.client), expected, r.name);
        await waitFor(() => r.client.getServerVersion() === head, 10000, `${r.name} at ${head}`);
        view.take(r.client.frames);
        assert.deepEqual(plain(view.graph), expected, `${r.name}: its frames`);
      }
      assert.deepEqual(view.problems, [], r.name);
      assert.equal(view.version, head, r.name);
      if (process.env.COMPACTION_DEBUG) console.log(`# ${r.name}: snapshots ${JSON.stringify(view.snapshots)}, ${view.seen.size} patches after`);
      // The log before the horizon is gone: a snapshot must come first.
      if (r.since < r.horizon || r.kind === 'ahead') assert.equal(view.snapshots[0]?.index, 0, `${r.name}: a snapshot first`);
    }
    for (const [i, w] of ch.writers.entries()) {
      const view = new Follower(`${ch.name} writer ${i}`, 0, emptyGraph(), w.own);
      await converges(() => plain(view.take(w.messages).graph), expected, view.name);
      assert.deepEqual(view.problems, [], view.name);
    }

    // GetSnapshot over gRPC: the same state, at the head, in pages.
    const pages = await new Promise((resolve, reject) => {
      const got = [];
      const call = grpc.GetSnapshot({ channel: ch.name, limit: 3 }, { deadline: new Date(Date.now() + 10000) });
      call.on('data', (p) => got.push(p));
      call.on('end', () => resolve(got));
      call.on('error', reject);
    });
    assert.ok(pages.every((p) => p.version === head && horizonOf(p) === horizonOf(at)));
    assert.ok(pages.slice(0, -1).every((p) => p.hasMore) && !pages.at(-1).hasMore);
    assert.deepEqual(plain(fold(pages.flatMap((p) => p.patches.map(fromGrpc)))), expected, 'GetSnapshot');
  }
});

// A Patch as the gRPC loader gives it (Structs as fields of Values), as JSON.
const fromGrpc = (p) => ({ ...p, data: p.data && fromStruct(p.data) });

test('DeleteChannel: its sockets get not_found and close 1008, clients/js stops, and a new write starts again at version 1', async () => {
  const log = new Log();
  const writer = await connect('channel=doomed');
  await writer.waitFor(() => writer.ofType('sync_state').length === 1);
  const patches = history('d').slice(0, 5);
  await write(writer, log, patches);
  let sockets = 0;
  class CountingWebSocket extends WebSocket {
    constructor(...args) { super(...args); sockets++; }
  }
  const js = jsClient('doomed', { WS: CountingWebSocket, clientId: 'js-doomed' });
  await js.whenSynced();
  await waitFor(() => js.getServerVersion() === 5, 10000, 'js at 5');
  const errors = [];
  const statuses = [];
  js.on('error', (e) => errors.push(e));
  js.on('status', (s) => statuses.push(s));
  let watched = 0;
  const watch = grpc.Watch({ channel: 'doomed', fromVersion: 0 });
  const watchEnded = new Promise((resolve) => {
    watch.on('data', () => { watched++; });
    watch.on('error', (e) => resolve(e.code));
    watch.on('end', () => resolve('end'));
  });
  await waitFor(() => watched === 5, 10000, 'the watch at 5');

  assert.equal(headOf(await unary(grpc, 'DeleteChannel', { channel: 'doomed' })), 5);
  assert.equal((await writer.closedWith()).code, 1008);
  assert.equal(writer.messages.at(-1).type, 'error');
  assert.equal(writer.messages.at(-1).payload.code, 'not_found');
  await waitFor(() => js.isGone(), 10000, 'the js client to see the deletion');
  assert.equal(errors.at(-1)?.code, 'not_found');
  assert.deepEqual(statuses.at(-1), { connected: false, code: 1008, gone: true });
  assert.equal(await watchEnded, 5, 'the Watch ends NOT_FOUND');
  await assert.rejects(unary(grpc, 'DeleteChannel', { channel: 'doomed' }), (e) => e.code === 5);

  // No reconnect: the backoff (50..200 ms) would have fired several times.
  js.createNode('Late', {}, 'late');   // stays pending, unsent
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(sockets, 1, 'the js client reconnected to a deleted channel');
  assert.equal(js.getPendingPatchCount(), 1);

  // A write creates the channel again from version 1; the old ids are free.
  const again = await connect('channel=doomed&since=0');
  await again.waitFor(() => again.ofType('sync_state').length === 1);
  assert.deepEqual(again.ofType('sync_state')[0].payload, { version: 0, patches: [], hasMore: false });
  const fresh = new Log();
  assert.deepEqual(await write(again, fresh, [patches[1]]), [{ patchId: 'd2', status: 'accepted', serverVersion: 1 }]);
  assert.equal(headOf(await info('doomed')), 1);

  // A client still at version 5 is taken back to the new channel's state.
  const stale = await connect('channel=doomed&since=5');
  const view = new Follower('since=5', 5, log.state(5));
  await converges(() => plain(view.take(stale.messages).graph), plain(fresh.state()), 'the stale client');
  assert.deepEqual(view.snapshots, [{ index: 0, version: 1 }]);
  assert.deepEqual(view.problems, []);
});
