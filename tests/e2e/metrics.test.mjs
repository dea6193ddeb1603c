// Metrics, health and logs, end to end: real syncd and sync-bridge with
// authentication on and --log-format json, known traffic over gRPC and
// WebSockets, then GET /metrics of both, checked by promtool and held
// against that traffic counter by counter; /health and /stats in their
// documented shapes; every log line of both processes a JSON object; and
// the example Prometheus files in deploy/prometheus checked by promtool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import grpc from '@grpc/grpc-js';
import { grpcPatch, syncClient } from './fault_grpc.mjs';
import { createDatabase, startBridge, startSyncd, stopProcess } from './syncd_process.mjs';
import { Client, node } from './ws_client.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const promtoolBin = process.env.PROMTOOL ?? 'promtool';
const ISSUER = 'https://id.e2e.test';
const AUDIENCE = 'syncd-e2e';
const SOCKETS_PER_ADDRESS = 4;

let db;
let dir;
let secret;
let syncd;
let bridge;
let client;  // gRPC, to syncd
const sockets = [];

// `syncd token` with the server's secret, issuer and audience.
const mint = (sub, read, write, ttl = 600) => execFileSync(process.env.SYNCD_BIN, [
  'token', '--key-file', join(dir, 'secret'), '--sub', sub, '--ttl', String(ttl), '--iss', ISSUER, '--aud', AUDIENCE,
  ...read.flatMap((p) => ['--read', p]), ...write.flatMap((p) => ['--write', p]),
], { encoding: 'utf8' }).trim();

// A token written by hand, for the ones `syncd token` will not make: HS256
// over `claims` with `key` (the server's secret unless told), or the header
// `header` names.
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const handMade = (claims, { key = secret, header = { alg: 'HS256', typ: 'JWT' } } = {}) => {
  const signed = `${b64(header)}.${b64(claims)}`;
  return `${signed}.${createHmac('sha256', key).update(signed).digest('base64url')}`;
};
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra = {}) => ({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: now() + 600,
  sync: { read: ['m:*'], write: ['m:*'] }, ...extra });

// gRPC calls with `token` (none: no authorization metadata).
const metadata = (token) => {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', token.startsWith('Bearer ') ? token : `Bearer ${token}`);
  return md;
};
const call = (method, request, token) => new Promise((resolve, reject) => {
  client[method](request, metadata(token), { deadline: new Date(Date.now() + 10000) },
    (err, res) => (err ? reject(err) : resolve(res)));
});

// ---- The exposition ---------------------------------------------------------

// Parses Prometheus' text format into {types: name -> type, values: series
// -> number, get(name, labels) (0 for a series not exposed: a labelled
// counter appears with its first increment), text}. A series is written
// name{label="value",...} with its labels sorted.
function parseExposition(text) {
  const types = new Map();
  const values = new Map();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = line.match(/^# TYPE (\S+) (\S+)$/);
    if (type) { types.set(type[1], type[2]); continue; }
    if (line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/);
    assert.ok(m, `not a sample line: ${line}`);
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const key = seriesKey(m[1], labels);
    assert.ok(!values.has(key), `${key} appears twice`);
    values.set(key, m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]));
  }
  return { types, values, text, get: (name, labels = {}) => values.get(seriesKey(name, labels)) ?? 0 };
}
const seriesKey = (name, labels) => {
  const keys = Object.keys(labels).sort();
  return keys.length === 0 ? name : `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(',')}}`;
};

async function scrape(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}
const syncdMetrics = () => scrape(`http://127.0.0.1:${syncd.httpPort}/metrics`);
const bridgeMetrics = () => scrape(`${bridge.http}/metrics`);

// How much each series moved between two scrapes.
const moved = (before, after, name, labels = {}) => after.get(name, labels) - before.get(name, labels);

// Polls `read` until `pred` holds of what it returned; resolves to that.
async function until(read, pred, what, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (pred(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last: ${value?.text ?? JSON.stringify(value)}`.slice(0, 4000));
    }
    await sleep(25);
  }
}

const promtool = (args, input) => {
  const r = spawnSync(promtoolBin, args, { input, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.error, undefined, `promtool did not run (${promtoolBin}): ${r.error}`);
  return r;
};
function promtoolAccepts(m, what) {
  const r = promtool(['check', 'metrics'], m.text);
  assert.equal(r.status, 0, `promtool check metrics on ${what}:\n${r.stdout}${r.stderr}`);
}

const health = async (url) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
};
const assertHealth = (h, status, code = 200) => {
  assert.equal(h.status, code);
  assert.match(h.type, /^application\/json/);
  assert.deepEqual(Object.keys(h.body), ['status', 'timestamp', 'activeConnections']);
  assert.equal(h.body.status, status);
  assert.match(h.body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.ok(Math.abs(Date.parse(h.body.timestamp) - Date.now()) < 60000, h.body.timestamp);
  assert.ok(Number.isInteger(h.body.activeConnections) && h.body.activeConnections >= 0);
};
const syncdHealth = () => health(`http://127.0.0.1:${syncd.httpPort}/health`);
const bridgeHealth = () => health(`${bridge.http}/health`);
const stats = async () => (await fetch(`${bridge.http}/stats`)).json();

// Every family named here is exposed with this type once the traffic below
// has run (labelled counters appear with their first increment).
const FAMILIES = {
  syncd_patches_accepted_total: 'counter',
  syncd_patches_ignored_total: 'counter',
  syncd_patches_rejected_total: 'counter',
  syncd_commit_batch_patches: 'histogram',
  syncd_commit_seconds: 'histogram',
  syncd_ack_seconds: 'histogram',
  syncd_patch_stage_seconds: 'histogram',
  syncd_deliveries_total: 'counter',
  syncd_sent_bytes_total: 'counter',
  syncd_catchup_reads_total: 'counter',
  syncd_log_reads_total: 'counter',
  syncd_snapshot_reads_total: 'counter',
  syncd_compactions_total: 'counter',
  syncd_compacted_patches_total: 'counter',
  syncd_last_compaction_timestamp_seconds: 'gauge',
  syncd_retention_pass_timestamp_seconds: 'gauge',
  syncd_retention_uncompacted_channels: 'gauge',
  syncd_presence_events_total: 'counter',
  syncd_rate_limited_patches_total: 'counter',
  syncd_database_errors_total: 'counter',
  syncd_database_up: 'gauge',
  syncd_streams: 'gauge',
  syncd_streams_behind: 'gauge',
  syncd_presence_local_members: 'gauge',
  syncd_presence_members: 'gauge',
  syncd_auth_failures_total: 'counter',
  syncd_build_info: 'gauge',
  sync_bridge_connections: 'gauge',
  sync_bridge_messages_received_total: 'counter',
  sync_bridge_messages_sent_total: 'counter',
  sync_bridge_sent_bytes_total: 'counter',
  sync_bridge_deliveries_total: 'counter',
  sync_bridge_errors_sent_total: 'counter',
  sync_bridge_subscribers_behind: 'gauge',
  sync_bridge_catchup_reads_total: 'counter',
  sync_bridge_upstream_failures_total: 'counter',
  sync_bridge_patches_accepted_total: 'counter',
  sync_bridge_rate_limited_patches_total: 'counter',
  sync_bridge_presence_members: 'gauge',
  sync_bridge_upstream_up: 'gauge',
  sync_bridge_refused_connections_total: 'counter',
  sync_bridge_auth_failures_total: 'counter',
  sync_bridge_build_info: 'gauge',
};
const AUTH_REASONS = ['missing', 'malformed', 'algorithm', 'bad_signature', 'expired', 'not_yet_valid',
  'wrong_issuer', 'wrong_audience', 'no_subject', 'forbidden'];

// ---- Processes ----------------------------------------------------------------

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sync-metrics-'));
  secret = `metrics-secret-${process.pid}`;
  writeFileSync(join(dir, 'secret'), secret);
  db = createDatabase();
  syncd = await startSyncd(db.url, ['--jwt-secret-file', join(dir, 'secret'), '--jwt-leeway', '0',
    '--jwt-issuer', ISSUER, '--jwt-audience', AUDIENCE, '--uncapped-subject', 'sync-bridge', '--log-format', 'json']);
  writeFileSync(join(dir, 'bridge-token'), mint('sync-bridge', ['*'], [], 3600));
  bridge = await startBridge(syncd.grpcPort, ['--upstream-token-file', join(dir, 'bridge-token'),
    '--max-sockets-per-address', String(SOCKETS_PER_ADDRESS), '--log-format', 'json']);
  client = syncClient(`127.0.0.1:${syncd.grpcPort}`);
});

after(async () => {
  for (const s of sockets) s.close();
  client?.close();
  if (bridge) await stopProcess(bridge, 'sync-bridge');
  if (syncd) await stopProcess(syncd, 'syncd');
  db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const open = async (query) => {
  const c = await Client.open(`${bridge.url}/sync?${query}`);
  sockets.push(c);
  return c;
};
const synced = (c) => c.waitFor((ms) => ms.some((m) => m.type === 'sync_state'), 5000, 'the first sync_state');
const refusedWith = async (c, code) => {
  await c.waitFor((ms, self) => self.closed !== null, 10000, 'the close');
  assert.equal(c.ofType('error')[0]?.payload.code, code, JSON.stringify(c.messages));
  assert.equal(c.closed.code, 1008);
};
const wsConnections = (m) => m.get('sync_bridge_connections', { transport: 'ws' });
// Waits until every WebSocket this suite opened is closed, on both sides.
async function allClosed() {
  for (const s of sockets) s.close();
  await Promise.all(sockets.map((s) => s.closedWith(10000)));
  return until(bridgeMetrics, (m) => wsConnections(m) === 0, 'the bridge to count no socket');
}

// ---- Tests ----------------------------------------------------------------------

test('at start: both /metrics pass promtool, /health has its shape, nothing is counted yet', async () => {
  const [s, b] = await Promise.all([syncdMetrics(), bridgeMetrics()]);
  promtoolAccepts(s, 'syncd');
  promtoolAccepts(b, 'sync-bridge');
  for (const [name, type] of Object.entries(FAMILIES)) {
    // Labelled counters have no series, hence no TYPE, before their first event.
    if (/_(rejected|auth_failures|refused_connections)/.test(name)) continue;
    assert.equal((name.startsWith('syncd_') ? s : b).types.get(name), type, name);
  }
  for (const m of [s, b]) {
    for (const [series, value] of m.values) {
      // The first retention pass runs as syncd starts.
      if (/_build_info\{|^syncd_database_up$|_up$|^syncd_retention_pass_timestamp_seconds$/.test(series)) continue;
      assert.equal(value, 0, series);
    }
  }
  // That pass is recent, or 0 if it has not finished yet.
  const pass = s.get('syncd_retention_pass_timestamp_seconds');
  assert.ok(pass === 0 || Math.abs(pass - Date.now() / 1000) < 60, `retention pass at ${pass}`);
  assert.equal(s.get('syncd_database_up'), 1);
  assert.equal(s.get('syncd_streams', { kind: 'session' }), 0);
  assert.equal(s.get('syncd_streams', { kind: 'watch' }), 0);
  for (const [m, name] of [[s, 'syncd_build_info'], [b, 'sync_bridge_build_info']]) {
    const series = [...m.values.keys()].filter((k) => k.startsWith(`${name}{`));
    assert.equal(series.length, 1, series.join());
    assert.match(series[0], /^\w+\{version="\d+\.\d+\.\d+[^"]*"\}$/);
    assert.equal(m.values.get(series[0]), 1);
  }
  for (const t of ['ws', 'crdt', 'socketio']) assert.equal(b.get('sync_bridge_connections', { transport: t }), 0);

  assertHealth(await syncdHealth(), 'ok');
  assertHealth(await bridgeHealth(), 'ok');
  assert.equal((await syncdHealth()).body.activeConnections, 0);
  assert.equal((await bridgeHealth()).body.activeConnections, 0);
  const st = await stats();
  assert.equal(st.totalChanges, 0);
  assert.deepEqual(st.activeUsers, []);
  assert.equal(st.activeUserCount, 0);
});

test('gRPC Push: accepted, ignored and rejected patches are counted by outcome and code', async () => {
  const token = mint('alice', ['m:*'], ['m:*']);
  const start = await syncdMetrics();
  const N = 5;
  const first = await call('Push', { channel: 'm:grpc',
    patches: Array.from({ length: N }, (_, i) => grpcPatch(`g${i}`, 'alice', `n${i}`, i)) }, token);
  assert.deepEqual(first.acks.map((a) => a.status), Array(N).fill('ACCEPTED'));
  // K deletes of nodes that do not exist, a resend, and a clientId that is
  // not the token's subject (refused before the committer).
  const K = 3;
  const second = await call('Push', { channel: 'm:grpc', patches: [
    ...Array.from({ length: K }, (_, i) => ({ id: `x${i}`, clientId: 'alice', op: 'delete_node', nodeId: `ghost-${i}` })),
    grpcPatch('g0', 'alice', 'n0', 0),
    grpcPatch('f0', 'mallory', 'nf', 0),
  ] }, token);
  assert.deepEqual(second.acks.map((a) => [a.status, a.code ?? '']),
    [...Array(K).fill(['REJECTED', 'not_found']), ['IGNORED', ''], ['REJECTED', 'forbidden']]);

  // Push counts its acks before it answers: no wait.
  const end = await syncdMetrics();
  assert.equal(moved(start, end, 'syncd_patches_accepted_total'), N);
  assert.equal(moved(start, end, 'syncd_patches_ignored_total'), 1);
  assert.equal(moved(start, end, 'syncd_patches_rejected_total', { code: 'not_found' }), K);
  assert.equal(moved(start, end, 'syncd_patches_rejected_total', { code: 'forbidden' }), 1);
  assert.equal(end.types.get('syncd_patches_rejected_total'), 'counter');
  assert.deepEqual([...end.values.keys()].filter((k) => k.startsWith('syncd_patches_rejected_total')).sort(),
    ['syncd_patches_rejected_total{code="forbidden"}', 'syncd_patches_rejected_total{code="not_found"}']);
  // The committer saw every patch but the forged one: each waited once for
  // its ack and was in one committed batch.
  const committed = N + K + 1;
  assert.equal(moved(start, end, 'syncd_ack_seconds_count'), committed);
  assert.equal(moved(start, end, 'syncd_commit_batch_patches_sum'), committed);
  const batches = moved(start, end, 'syncd_commit_batch_patches_count');
  assert.ok(batches >= 2 && batches <= committed, `${batches} batches`);
  assert.equal(moved(start, end, 'syncd_commit_seconds_count'), batches);
  // Each of them waited for its batch and was in its commit, once; a unary
  // Push writes no ack or broadcast to a stream.
  for (const stage of ['queue', 'commit']) {
    assert.equal(moved(start, end, 'syncd_patch_stage_seconds_count', { stage }), committed, stage);
  }
  assert.equal(moved(start, end, 'syncd_patch_stage_seconds_count', { stage: 'ack_write' }), 0);
  assert.ok(moved(start, end, 'syncd_commit_seconds_sum') > 0);
  assert.equal(moved(start, end, 'syncd_rate_limited_patches_total'), 0);
  assert.equal(moved(start, end, 'syncd_database_errors_total'), 0);
});

test('gRPC: a call refused for its token is counted once, under its reason', async () => {
  const start = await syncdMetrics();
  const info = { channel: 'm:grpc' };
  const refusals = [
    ['missing', undefined],
    ['malformed', 'Bearer garbage'],
    ['algorithm', handMade(claims(), { header: { alg: 'none', typ: 'JWT' } })],
    ['bad_signature', handMade(claims(), { key: 'not-the-secret' })],
    ['expired', handMade(claims({ exp: now() - 60 }))],
    ['not_yet_valid', handMade(claims({ nbf: now() + 3600 }))],
    ['wrong_issuer', handMade(claims({ iss: 'https://elsewhere.test' }))],
    ['wrong_audience', handMade(claims({ aud: 'someone-else' }))],
    ['no_subject', handMade(claims({ sub: undefined }))],
  ];
  for (const [reason, token] of refusals) {
    await assert.rejects(call('GetChannelInfo', info, token),
      (e) => e.code === grpc.status.UNAUTHENTICATED || assert.fail(`${reason}: ${e.code} ${e.details}`));
  }
  // A token that may read m:* but write nothing: Push is refused whole.
  await assert.rejects(call('Push', { channel: 'm:grpc', patches: [grpcPatch('b0', 'bob', 'nb', 0)] },
    mint('bob', ['m:*'], [])), (e) => e.code === grpc.status.PERMISSION_DENIED);
  // The hand-made token is good when nothing is wrong with it.
  assert.equal((await call('GetChannelInfo', info, handMade(claims()))).headVersion, 5);

  const end = await syncdMetrics();
  for (const reason of AUTH_REASONS) {
    assert.equal(moved(start, end, 'syncd_auth_failures_total', { reason }), 1, reason);
  }
  assert.equal([...end.values.keys()].filter((k) => k.startsWith('syncd_auth_failures_total')).length,
    AUTH_REASONS.length);
  assert.equal(end.types.get('syncd_auth_failures_total'), 'counter');
  assert.equal(moved(start, end, 'syncd_patches_accepted_total'), 0);
  assert.equal(moved(start, end, 'syncd_patches_rejected_total', { code: 'forbidden' }), 0);
});

test('Session and Watch streams: the gauges while they are open, and what they were sent', async () => {
  const start = await syncdMetrics();
  // Two subjects: each session is its own client.
  const sessions = ['alice', 'carol'].map((sub) => {
    const s = { call: client.Session(metadata(mint(sub, ['m:*'], ['m:*']))), got: [] };
    s.call.on('data', (m) => s.got.push(m));
    s.call.on('error', () => {});
    s.call.write({ open: { channel: 'm:grpc', fromVersion: 0 } });
    return s;
  });
  const watch = { call: client.Watch({ channel: 'm:grpc', fromVersion: 0 }, metadata(mint('dave', ['m:*'], []))), got: [] };
  watch.call.on('data', (p) => watch.got.push(p));
  watch.call.on('error', () => {});
  const patchesIn = (s) => s.got.flatMap((m) => (m.kind === 'syncState' ? m.syncState.patches ?? []
    : m.kind === 'broadcast' ? [m.broadcast] : []));
  await until(async () => [...sessions.map(patchesIn), watch.got].map((ps) => ps.length),
    (lengths) => lengths.every((n) => n === 5), 'the history of 5 patches on every stream');

  const open = await until(syncdMetrics, (m) => m.get('syncd_streams', { kind: 'session' }) === 2
    && m.get('syncd_streams', { kind: 'watch' }) === 1, 'two sessions and a watch');
  assert.equal((await syncdHealth()).body.activeConnections, 3);

  // The first session writes two patches: acked to it, sent to the others.
  for (const i of [0, 1]) sessions[0].call.write({ patch: grpcPatch(`s${i}`, 'alice', `ns${i}`, i) });
  await until(async () => sessions[0].got.filter((m) => m.kind === 'ack').map((m) => m.ack.status),
    (acks) => acks.length === 2, 'the acks to the session');
  assert.deepEqual(sessions[0].got.filter((m) => m.kind === 'ack').map((m) => m.ack.status), ['ACCEPTED', 'ACCEPTED']);
  await until(async () => [patchesIn(sessions[1]).length, watch.got.length], ([a, b]) => a === 7 && b === 7,
    'the broadcasts to the other session and the watch');
  const live = await until(syncdMetrics, (m) => moved(start, m, 'syncd_deliveries_total') >= 19, 'the deliveries');
  // 5 patches of history to each of three streams, then 2 live ones to the
  // two that did not write them.
  assert.equal(moved(start, live, 'syncd_deliveries_total'), 3 * 5 + 2 * 2);
  assert.equal(moved(start, live, 'syncd_patches_accepted_total'), 2);
  assert.equal(moved(start, live, 'syncd_ack_seconds_count'), 2);
  assert.ok(moved(start, live, 'syncd_sent_bytes_total') > 0);
  assert.ok(moved(start, live, 'syncd_log_reads_total') >= 3, 'a history read per stream');
  assert.equal(live.get('syncd_streams_behind'), 0);
  assert.equal(open.get('syncd_database_up'), 1);

  for (const s of sessions) s.call.cancel();
  watch.call.cancel();
  await until(syncdMetrics, (m) => m.get('syncd_streams', { kind: 'watch' }) === 0, 'the watch to be counted closed');
  await until(syncdHealth, (h) => h.body.activeConnections === 0, 'no stream in /health');
});

// A Session's stream is uncounted when the last reference to it goes; the
// committer's answered batch must not keep the sessions that wrote it.
test('a Session that wrote patches is no longer counted once it closed', async () => {
  await until(syncdMetrics, (m) => m.get('syncd_streams', { kind: 'session' }) === 0, 'no session counted', 3000);
});

test('WebSockets through the bridge: connections, active users, and the patches it pushed', async () => {
  const [s0, b0] = await Promise.all([syncdMetrics(), bridgeMetrics()]);
  // Opened in this order so that activeUsers shows its sorting.
  const carol = await open(`channel=m:ws&token=${mint('carol', ['m:*'], ['m:*'])}`);
  const alice = await open(`channel=m:ws&token=${mint('alice', ['m:*'], ['m:*'])}`);
  await Promise.all([synced(carol), synced(alice)]);
  const st = await until(stats, (x) => x.activeUserCount === 2, 'two active users');
  assert.deepEqual(st.activeUsers, ['alice', 'carol']);
  assert.equal(st.activeConnections, 2);
  const b1 = await until(bridgeMetrics, (m) => wsConnections(m) === 2, 'two sockets counted');
  assert.equal(b1.get('sync_bridge_upstream_up'), 1);
  assert.equal((await bridgeHealth()).body.activeConnections, 2);
  // The bridge holds one Watch for the channel, whoever its sockets are.
  await until(syncdMetrics, (m) => m.get('syncd_streams', { kind: 'watch' }) === 1, 'the bridge\'s watch');

  const W = 3;
  for (let i = 0; i < W; i++) alice.patch(node(`w${i}`, `nw${i}`, { clientId: 'alice' }));
  alice.patch({ id: 'wx', clientId: 'alice', op: 'delete_node', nodeId: 'ghost' });
  alice.patch(node('w0', 'nw0', { clientId: 'alice' }));
  await alice.waitFor(() => alice.ofType('patch_response').length === W + 2, 5000, 'every answer');
  assert.deepEqual(alice.ofType('patch_response').map((m) => [m.payload.patchId, m.payload.status, m.payload.code ?? '']).sort(),
    [['w0', 'accepted', ''], ['w0', 'ignored', ''], ['w1', 'accepted', ''], ['w2', 'accepted', ''], ['wx', 'rejected', 'not_found']]);
  await carol.waitFor(() => carol.ofType('patch_broadcast').length === W, 5000, 'the broadcasts');

  const framesSent = carol.messages.length + alice.messages.length;
  const b2 = await until(bridgeMetrics, (m) => moved(b0, m, 'sync_bridge_patches_accepted_total') >= W
    && moved(b0, m, 'sync_bridge_deliveries_total') >= W && moved(b0, m, 'sync_bridge_messages_received_total') >= W + 2
    && moved(b0, m, 'sync_bridge_messages_sent_total') >= framesSent, 'the bridge to count the traffic');
  assert.equal(moved(b0, b2, 'sync_bridge_patches_accepted_total'), W);
  assert.equal((await stats()).totalChanges, W);
  // Carol was sent the three broadcasts; Alice's own come back as acks.
  assert.equal(moved(b0, b2, 'sync_bridge_deliveries_total'), W);
  assert.equal(moved(b0, b2, 'sync_bridge_messages_received_total'), W + 2);
  assert.equal(moved(b0, b2, 'sync_bridge_messages_sent_total'), framesSent);
  assert.ok(moved(b0, b2, 'sync_bridge_sent_bytes_total') > 0);
  assert.equal(moved(b0, b2, 'sync_bridge_errors_sent_total'), 0);
  assert.equal(moved(b0, b2, 'sync_bridge_upstream_failures_total'), 0);
  const s2 = await syncdMetrics();
  assert.equal(moved(s0, s2, 'syncd_patches_accepted_total'), W);
  assert.equal(moved(s0, s2, 'syncd_patches_ignored_total'), 1);
  assert.equal(moved(s0, s2, 'syncd_patches_rejected_total', { code: 'not_found' }), 1);

  await allClosed();
  const after = await until(stats, (x) => x.activeUserCount === 0, 'no active user');
  assert.deepEqual(after.activeUsers, []);
  assert.equal(after.activeConnections, 0);
  assert.equal(after.totalChanges, W);
  assert.equal((await bridgeHealth()).body.activeConnections, 0);
});

test('the bridge: a bad, an expired and a forbidden token, and one socket too many, counted by reason', async () => {
  const [s0, b0] = await Promise.all([syncdMetrics(), bridgeMetrics()]);
  await refusedWith(await open('channel=m:ws&token=garbage'), 'unauthenticated');
  await refusedWith(await open(`channel=m:ws&token=${handMade(claims({ exp: now() - 60 }))}`), 'unauthenticated');
  await refusedWith(await open(`channel=elsewhere&token=${mint('alice', ['m:*'], ['m:*'])}`), 'forbidden');
  const refusals = (m) => ['malformed', 'unauthenticated', 'forbidden']
    .reduce((n, reason) => n + moved(b0, m, 'sync_bridge_auth_failures_total', { reason }), 0);
  const b1 = await until(bridgeMetrics, (m) => moved(b0, m, 'sync_bridge_errors_sent_total') >= 3 && refusals(m) >= 3,
    'the refusals to be counted');
  assert.equal(moved(b0, b1, 'sync_bridge_auth_failures_total', { reason: 'malformed' }), 1);
  assert.equal(moved(b0, b1, 'sync_bridge_auth_failures_total', { reason: 'unauthenticated' }), 1);
  assert.equal(moved(b0, b1, 'sync_bridge_auth_failures_total', { reason: 'forbidden' }), 1);
  assert.equal(moved(b0, b1, 'sync_bridge_errors_sent_total'), 3);
  assert.equal(b1.types.get('sync_bridge_auth_failures_total'), 'counter');
  // The bridge refuses a token that is not a JWT, or whose exp has passed,
  // itself; syncd refuses the channel, once.
  const s1 = await syncdMetrics();
  for (const reason of AUTH_REASONS) {
    assert.equal(moved(s0, s1, 'syncd_auth_failures_total', { reason }), reason === 'forbidden' ? 1 : 0, reason);
  }
  await allClosed();

  const token = mint('alice', ['m:*'], ['m:*']);
  const held = [];
  for (let i = 0; i < SOCKETS_PER_ADDRESS; i++) held.push(await open(`channel=m:ws&token=${token}`));
  await Promise.all(held.map(synced));
  await refusedWith(await open(`channel=m:ws&token=${token}`), 'rate_limited');
  const b2 = await until(bridgeMetrics, (m) => wsConnections(m) === SOCKETS_PER_ADDRESS, 'the sockets held');
  assert.equal(moved(b0, b2, 'sync_bridge_refused_connections_total', { reason: 'per_address' }), 1);
  assert.equal(b2.types.get('sync_bridge_refused_connections_total'), 'counter');
  const st = await until(stats, (x) => x.activeUserCount === 1, 'one active user');
  assert.deepEqual(st.activeUsers, ['alice']);
  await allClosed();
});

test('after the traffic: every metric with its type, consistent histograms, promtool; the example Prometheus files', async () => {
  const [s, b] = await Promise.all([syncdMetrics(), bridgeMetrics()]);
  promtoolAccepts(s, 'syncd');
  promtoolAccepts(b, 'sync-bridge');
  const exposed = new Map([...s.types, ...b.types]);
  assert.deepEqual(Object.fromEntries([...exposed].sort()), Object.fromEntries(Object.entries(FAMILIES).sort()));

  // Totals over the whole suite.
  assert.equal(s.get('syncd_patches_accepted_total'), 5 + 2 + 3);
  assert.equal(s.get('syncd_patches_ignored_total'), 2);
  assert.equal(s.get('syncd_patches_rejected_total', { code: 'not_found' }), 3 + 1);
  assert.equal(b.get('sync_bridge_patches_accepted_total'), 3);
  assert.equal(s.get('syncd_database_errors_total'), 0);
  assert.equal(s.get('syncd_database_up'), 1);
  assert.equal(b.get('sync_bridge_upstream_failures_total'), 0);
  for (const name of ['syncd_commit_batch_patches', 'syncd_commit_seconds', 'syncd_ack_seconds']) {
    const buckets = [...s.values].filter(([k]) => k.startsWith(`${name}_bucket{`))
      .map(([k, v]) => [Number(k.match(/le="([^"]+)"/)[1].replace('+Inf', 'Infinity')), v])
      .sort((x, y) => x[0] - y[0]);
    assert.ok(buckets.length > 2 && buckets.at(-1)[0] === Infinity, name);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], `${name} buckets`);
    assert.equal(buckets.at(-1)[1], s.get(`${name}_count`), `${name}: +Inf bucket = count`);
  }
  assert.equal(s.get('syncd_ack_seconds_count'), 5 + 3 + 1 + 2 + 3 + 1 + 1);

  // The README's table names exactly these families.
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const from = readme.indexOf('\n## Metrics and monitoring\n');
  assert.ok(from >= 0, 'README.md has no section "Metrics and monitoring"');
  const to = readme.indexOf('\n## ', from + 1);
  const documented = new Set([...readme.slice(from, to < 0 ? undefined : to)
    .matchAll(/^\| `((?:syncd|sync_bridge)_[a-z_]+)/gm)].map((m) => m[1]));
  assert.deepEqual([...documented].sort(), Object.keys(FAMILIES).sort());

  // The example rules and scrape configuration load, and every metric the
  // rules use is one the processes expose.
  const rules = join(root, 'deploy/prometheus/alerts.yml');
  let r = promtool(['check', 'rules', rules]);
  assert.equal(r.status, 0, `promtool check rules:\n${r.stdout}${r.stderr}`);
  r = promtool(['check', 'config', join(root, 'deploy/prometheus/prometheus.yml')]);
  assert.equal(r.status, 0, `promtool check config:\n${r.stdout}${r.stderr}`);
  for (const [name] of readFileSync(rules, 'utf8').matchAll(/\b(?:syncd|sync_bridge)_[a-z_]+\b/g)) {
    const family = name.replace(/_(bucket|count|sum)$/, '');
    assert.ok(exposed.has(name) || exposed.get(family) === 'histogram', `alerts.yml uses ${name}, which is not exposed`);
  }
});

test('stopping: /health answers 503 "stopping"; every line either process logged is a JSON object', async () => {
  const logLines = [];
  for (const [proc, url, name] of [[bridge, `${bridge.http}/health`, 'sync-bridge'],
    [syncd, `http://127.0.0.1:${syncd.httpPort}/health`, 'syncd']]) {
    const stopped = stopProcess(proc, name);
    // Until its listener closes, /health says the process is stopping (the
    // bridge takes a while to close its sockets; syncd is quick, and may be
    // gone before a poll sees it).
    const h = await until(() => health(url).catch(() => null), (x) => x === null || x.status === 503, `${name} stopping`);
    if (name === 'sync-bridge') assert.notEqual(h, null, 'the bridge closed its listener at once');
    if (h) assertHealth(h, 'stopping', 503);
    assert.equal(await stopped, 0);
    const lines = proc.output().split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 3, `${name} logged: ${proc.output()}`);
    for (const line of lines) logLines.push([name, line]);
  }
  bridge = null;
  syncd = null;
  for (const [name, line] of logLines) {
    let entry;
    assert.doesNotThrow(() => { entry = JSON.parse(line); }, `${name} logged a line that is not JSON: ${line}`);
    assert.deepEqual(Object.keys(entry), ['time', 'level', 'msg'], line);
    assert.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
    assert.ok(['trace', 'debug', 'info', 'warning', 'error', 'critical'].includes(entry.level), line);
    assert.equal(typeof entry.msg, 'string');
  }
  assert.ok(logLines.some(([name, l]) => name === 'syncd' && JSON.parse(l).msg.startsWith('syncd serving gRPC')));
  assert.ok(logLines.some(([name, l]) => name === 'sync-bridge' && JSON.parse(l).msg === 'stopped'));
});
