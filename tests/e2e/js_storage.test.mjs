// clients/js with durable storage (`storage: dir`) against real syncd and
// sync-bridge processes: edits survive SIGKILL and land exactly once, a
// restart shows the stored graph before any network and resumes from the
// stored version, and damaged storage is recovered from or refused clearly.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createSyncClient } from '../../clients/js/sync-client.js';
import { syncClient, unary } from './fault_grpc.mjs';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const writerScript = path.join(here, 'js_storage_writer.mjs');
let db;
let syncd;
let bridge;
let grpc;
const dirs = [];
const children = [];

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url);
  bridge = await startBridge(syncd.grpcPort);
  grpc = syncClient(`127.0.0.1:${syncd.grpcPort}`);
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  grpc?.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'sync-client-store-'));
  dirs.push(d);
  return d;
};

const until = async (pred, what, ms = 20000) => {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

// Starts js_storage_writer.mjs; `next(event)` resolves to its next report of
// that event (rejects if it exits first); `kill()` SIGKILLs it and waits.
function writer(url, dir, channel, mode, n = 0) {
  const child = spawn(process.execPath, [writerScript, url, dir, channel, mode, String(n)]);
  children.push(child);
  const reports = [];
  const waiting = [];
  let output = '';
  let exited = null;
  const settle = () => {
    for (const w of [...waiting]) {
      const r = reports.find((x) => x.event === w.event && !x.taken);
      if (r) {
        r.taken = true;
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(r);
      } else if (exited !== null) {
        waiting.splice(waiting.indexOf(w), 1);
        w.reject(new Error(`the writer (${mode}) exited (${exited}) before '${w.event}':\n${output}`));
      }
    }
  };
  let line = '';
  child.stdout.on('data', (chunk) => {
    line += chunk;
    for (let i = line.indexOf('\n'); i >= 0; i = line.indexOf('\n')) {
      reports.push(JSON.parse(line.slice(0, i)));
      output += `${line.slice(0, i + 1)}`;
      line = line.slice(i + 1);
    }
    settle();
  });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => {
    exited = code ?? signal;
    settle();
    resolve(exited);
  }));
  return {
    next: (event, ms = 30000) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for the writer's '${event}':\n${output}`)), ms);
      waiting.push({ event, resolve: (r) => { clearTimeout(timer); resolve(r); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      settle();
    }),
    kill: () => {
      child.kill('SIGKILL');
      return exit;
    },
    exit,
  };
}

// The channel's log as the server holds it (GetChanges, page by page).
async function serverLog(channel) {
  const patches = [];
  for (let from = 0; ;) {
    const r = await unary(grpc, 'GetChanges', { channel, fromVersion: from, limit: 500 });
    patches.push(...(r.patches ?? []));
    if (!r.hasMore) return patches;
    from = r.version;
  }
}

const logIds = async (channel) => (await serverLog(channel)).map((p) => p.id);

// A client without storage, for comparison: its graph once at `version`.
async function graphAt(channel, version) {
  const c = await createSyncClient({ serverUrl: `${bridge.url}/sync`, channel, WebSocket });
  try {
    await c.whenSynced();
    await until(() => c.getServerVersion() === version, `a second client at version ${version}`);
    const { nodes, edges } = c.snapshot();
    return JSON.parse(JSON.stringify({ nodes, edges }));
  } finally {
    await c.close();
  }
}

test('50 edits made offline survive SIGKILL, show at once after a restart, and land exactly once', async () => {
  const channel = 'offline50';
  const dir = tempDir();
  const port = bridge.port;
  const url = `${bridge.url}/sync`;
  await bridge.stop();

  // Offline: the edits are accepted and stored, then the process dies.
  const first = writer(url, dir, channel, 'edit', 50);
  assert.deepEqual((await first.next('loaded')).pending, []);
  const { ids } = await first.next('durable');
  assert.equal(ids.length, 50);
  await first.kill();

  // Still offline: a new process shows them at once, and dies too.
  const second = writer(url, dir, channel, 'hold');
  const shown = await second.next('loaded');
  assert.deepEqual(shown.pending, ids, 'the pending edits, in order, with their ids');
  assert.equal(Object.keys(shown.nodes).length, 10);
  assert.deepEqual(shown.nodes[`${channel}-n45`].properties, { i: 45, k46: 46, k47: 47, k48: 48, k49: 49 });
  await second.kill();

  // Online: each edit lands once; a second client sees the same graph.
  bridge = await startBridge(syncd.grpcPort, [], port);
  const third = writer(url, dir, channel, 'settle');
  assert.deepEqual((await third.next('loaded')).pending, ids);
  const settled = await third.next('settled');
  assert.equal(settled.version, 50);
  assert.deepEqual(settled.answers.map((a) => [a.patchId, a.status]), ids.map((id) => [id, 'accepted']));
  const log = await serverLog(channel);
  assert.deepEqual(log.map((p) => p.id), ids, 'every edit once, in the order made');
  assert.deepEqual(log.map((p) => p.serverVersion), ids.map((_, i) => i + 1));
  assert.deepEqual(await graphAt(channel, 50), settled.graph);

  // A restart resumes from the stored version, with the graph shown at once.
  const fourth = writer(url, dir, channel, 'settle');
  const resumed = await fourth.next('loaded');
  assert.equal(resumed.version, 50);
  assert.equal(resumed.since, '50');
  assert.deepEqual(resumed.pending, []);
  assert.deepEqual(resumed.nodes, settled.graph.nodes);
  assert.deepEqual((await fourth.next('settled')).answers, []);
  assert.equal((await serverLog(channel)).length, 50);
});

test('edits the server stored before their acks were read are resent with their ids and land once', async () => {
  const channel = 'unread';
  const dir = tempDir();
  const url = `${bridge.url}/sync`;
  const first = writer(url, dir, channel, 'edit-unread', 10);
  const { ids } = await first.next('durable');
  // The writer reads nothing from its socket now: once the server holds
  // every edit, their acks are unread, and the process dies.
  await until(async () => (await logIds(channel)).length === ids.length, 'the edits stored');
  await first.kill();
  assert.deepEqual(await logIds(channel), ids);

  const second = writer(url, dir, channel, 'settle');
  assert.deepEqual((await second.next('loaded')).pending, ids, 'unacknowledged, so still pending');
  const settled = await second.next('settled');
  assert.equal(settled.version, ids.length);
  assert.deepEqual(settled.answers.map((a) => [a.patchId, a.status]), ids.map((id) => [id, 'ignored']),
    'stored before, so each answered ignored');
  assert.deepEqual(await logIds(channel), ids, 'each once');
  assert.deepEqual(await graphAt(channel, ids.length), settled.graph);
});

// A store made by a writer that was killed with 3 edits unsent (the server is not running there).
async function killedStore(channel) {
  const dir = tempDir();
  const w = writer('ws://127.0.0.1:9/sync', dir, channel, 'edit', 3);
  const { ids } = await w.next('durable');
  await w.kill();
  return { dir, ids };
}
const open = (dir, channel) => createSyncClient({ serverUrl: 'ws://127.0.0.1:9/sync', channel, storage: dir, WebSocket,
  reconnectInterval: 60000 });
const logFile = (dir) => path.join(dir, readdirSync(dir).find((n) => n.startsWith('pending-')));

test('a torn last line of the pending log is dropped: the edits before it stay', async () => {
  const { dir, ids } = await killedStore('torn');
  appendFileSync(logFile(dir), '{"id":"p_torn","timestamp":1,"op":"create_n');
  const c = await open(dir, 'torn');
  try {
    assert.deepEqual(c.getPendingPatches().map((p) => p.id), ids);
    assert.ok(readFileSync(logFile(dir), 'utf8').endsWith('}\n'), 'the torn line is cut off');
    c.createNode('Item', {}, 'after-torn');
    await c.flush();
  } finally {
    await c.close();
  }
  const again = await open(dir, 'torn');
  try {
    assert.deepEqual(again.getPendingPatches().map((p) => p.id).slice(0, 3), ids);
    assert.ok(again.getNode('after-torn'));
  } finally {
    await again.close();
  }
});

test('damaged storage is refused with an error that says what to do', async () => {
  const { dir: garbled } = await killedStore('garbled');
  const log = logFile(garbled);
  writeFileSync(log, `this is not a patch\n${readFileSync(log, 'utf8')}`);
  await assert.rejects(open(garbled, 'garbled'), /pending-\d+\.log: line 1 is not JSON.*move its directory aside/);

  const { dir: badCheckpoint } = await killedStore('bad-checkpoint');
  writeFileSync(path.join(badCheckpoint, 'checkpoint.json'), '{"format":"syncd-client-checkpoint/1","generation":');
  await assert.rejects(open(badCheckpoint, 'bad-checkpoint'), /checkpoint\.json: not JSON.*move its directory aside/);

  const { dir: other } = await killedStore('mine');
  await assert.rejects(open(other, 'yours'), /holds channel "mine", not "yours"/);
  // Each refusal released the directory: it opens once repaired (or, here, for its own channel).
  const c = await open(other, 'mine');
  try {
    await assert.rejects(open(other, 'mine'), /in use by process \d+ \(this one\)/);
  } finally {
    await c.close();
  }
});

test('a rejected edit is recorded at once, not at the next checkpoint: a crash cannot bring it back', async () => {
  const dir = tempDir();
  // Checkpoints a minute apart: only the rejection itself may write one.
  const c = await createSyncClient({ serverUrl: `${bridge.url}/sync`, channel: 'rejected-once', clientId: 'r',
    storage: dir, WebSocket, checkpointInterval: 60000 });
  try {
    const rejected = [];
    c.on('rejected', (r) => rejected.push(r.patch.id));
    const n = c.createNode('Person', { name: 'x' });
    const bad = c.createEdge('KNOWS', n, 'nobody', {}, 'e-bad');  // the server does not know "nobody"
    await until(() => rejected.length === 1, 'the rejection');
    const stored = () => JSON.parse(readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
    const log = () => readdirSync(dir).filter((f) => f.startsWith('pending-'))
      .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).id));
    // What a restart would load now (checkpoint + its log) no longer holds it.
    await until(() => {
      const s = stored();
      const logged = readdirSync(dir).includes(`pending-${s.generation}.log`) ? log() : [];
      return !s.pending.some((p) => p.id === rejected[0]) && !logged.includes(rejected[0]);
    }, 'the rejection to be stored', 5000);
    assert.ok(bad);
  } finally {
    await c.close();
  }
});
