// Hostile input against real sync-bridge and syncd processes, with
// authentication on and off: tokens with bytes a JWT cannot hold, frames
// nested 100,000 deep, frames of 100,000 keys, a token whose exp overflows,
// too many sockets, slow and oversized request heads, and two attackers
// sending the worst frames they can while a bystander measures its
// broadcast latency. Every process must stay up, every attacker get a clear
// error or close, the bystander keep its latency, and nothing be stored.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';
import { RawSocket, textFrame } from './raw_ws.mjs';
import { Client, node } from './ws_client.mjs';

let db;
let dir;
let secret;
let authd;       // syncd with --jwt-secret-file
let opend;       // syncd with authentication off, on the same database
let authBridge;  // in front of authd, at most 3 sockets per subject
let openBridge;  // in front of opend, default limits
let capBridge;   // in front of opend, tight caps and timeouts
const sockets = [];

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
// An HS256 token signed with the server's secret, with any claims at all.
const sign = (claims) => {
  const body = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
};
const mint = (sub) => sign({ sub, exp: Math.floor(Date.now() / 1000) + 600, sync: { read: ['*'], write: ['*'] } });

const open = async (bridge, query, protocols) => {
  const c = await Client.open(`${bridge.url}/sync?${query}`, protocols);
  sockets.push(c);
  return c;
};
const opened = (c) => c.waitFor((ms) => ms.some((m) => m.type === 'sync_state'), 10000, 'the first sync_state');
const errorThenClose = async (c, code, closeCode = 1008) => {
  await c.closedWith();
  assert.equal(c.ofType('error')[0]?.payload.code, code, JSON.stringify(c.messages).slice(0, 300));
  assert.equal(c.closed.code, closeCode);
  return c.ofType('error')[0].payload.message;
};
const rawRefused = async (s, code, closeCode = 1008) => {
  assert.equal(s.status, 101);
  const close = await s.closed();
  assert.ok(s.messages().some((m) => m.type === 'error' && m.payload.code === code), JSON.stringify(s.frames).slice(0, 300));
  assert.equal(close?.code, closeCode);
  s.destroy();
};

// Every process still runs and answers.
async function alive() {
  for (const p of [authd, opend, authBridge, openBridge, capBridge]) {
    assert.equal(p.child.exitCode, null, `a process exited:\n${p.output().slice(-2000)}`);
    assert.equal(p.child.signalCode, null, `a process died:\n${p.output().slice(-2000)}`);
  }
  for (const b of [authBridge, openBridge, capBridge]) assert.equal(await healthz(b.port), 200);
}

// GET /healthz on a connection of its own: a pooled keep-alive connection
// may be one the bridge is just closing (capBridge's --header-timeout is 1 s).
const healthz = (port) => new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
    res.resume();
    resolve(res.statusCode);
  }).on('error', reject);
});

// The head of `channel`, as a fresh socket sees it.
async function head(bridge, channel) {
  const c = await open(bridge, `channel=${channel}&since=head`);
  await opened(c);
  c.close();
  return c.ofType('sync_state')[0].payload.version;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sync-hostile-'));
  secret = 'hostile-secret-' + process.pid;
  writeFileSync(join(dir, 'secret'), secret);
  db = createDatabase();
  authd = await startSyncd(db.url, ['--jwt-secret-file', join(dir, 'secret')]);
  opend = await startSyncd(db.url);
  writeFileSync(join(dir, 'bridge-token'), execFileSync(process.env.SYNCD_BIN, ['token', '--key-file',
    join(dir, 'secret'), '--sub', 'sync-bridge', '--read', '*', '--ttl', '3600'], { encoding: 'utf8' }).trim());
  authBridge = await startBridge(authd.grpcPort, ['--upstream-token-file', join(dir, 'bridge-token'),
    '--max-sockets-per-subject', '3']);
  openBridge = await startBridge(opend.grpcPort);
  capBridge = await startBridge(opend.grpcPort, ['--max-sockets-per-address', '3', '--header-timeout', '1',
    '--max-header-bytes', '2048']);
});

after(async () => {
  for (const s of sockets) s.close();
  for (const p of [capBridge, openBridge, authBridge, opend, authd]) await p?.stop();
  db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

test('tokens holding bytes a JWT cannot: unauthenticated and 1008, no crash, never in a log', async () => {
  const valid = mint('mallory');
  const evil = encodeURIComponent(`${valid}\r\nx-evil: 1`);
  const cases = [
    ['/sync?channel=h:1&since=0&token=x.y.z%0D%0Ax-evil%3A%201%00', ''],
    ['/sync?channel=h:1', 'Authorization: Bearer abc\xff.def.ghi\r\n'],
    ['/sync?channel=h:1', 'Authorization: Basic bWFsbG9yeTpwdw==\r\n'],
    ['/sync?channel=h:1', 'Sec-WebSocket-Protocol: sync, bearer.abc\xff.def\r\n'],
    [`/crdt?channel=h:1&token=${evil}`, ''],
    [`/sync?channel=h:1&token=${'a'.repeat(5000)}.b.c`, ''],
  ];
  for (const bridge of [authBridge, openBridge]) {
    for (const [target, headers] of cases) {
      await rawRefused(await RawSocket.open(bridge.port, target, headers), 'unauthenticated');
    }
  }
  // A socket with a good token sends a fresh one with a header appended.
  const c = await open(authBridge, `channel=h:1&token=${valid}`);
  await opened(c);
  c.send({ type: 'auth', payload: { token: `${valid}\r\nx-evil: 1` } });
  assert.match(await errorThenClose(c, 'unauthenticated'), /malformed token/);
  await alive();
  for (const b of [authBridge, openBridge]) {
    assert.ok(!b.output().includes(valid.split('.')[2]), 'a token reached the log');
    assert.ok(!b.output().includes('x-evil'), 'attacker bytes reached the log');
  }
});

test('frames nested 100,000 deep: invalid_json before and after authentication, both dialects', async () => {
  const deep = `{"type":"patch","payload":${'['.repeat(100000)}${']'.repeat(100000)}}`;
  // Before authentication, racing the bridge's own refusal, four times.
  for (let i = 0; i < 4; i++) {
    const s = await RawSocket.open(authBridge.port, '/sync?channel=deep');
    s.sendText(deep);
    s.sendText(deep);
    await rawRefused(s, 'unauthenticated');
  }
  const c = await open(openBridge, 'channel=deep');
  await opened(c);
  c.send(deep);
  c.send(`{"type":"heartbeat","payload":${'{"a":'.repeat(50000)}1${'}'.repeat(50000)}}`);
  await c.waitFor((ms) => ms.filter((m) => m.type === 'error').length === 2, 10000, 'two errors');
  for (const e of c.ofType('error')) {
    assert.equal(e.payload.code, 'invalid_json');
    assert.match(e.payload.message, /deeper than 64/);
  }
  // The socket stays usable.
  c.patch(node('after-deep'));
  assert.equal((await c.ack('after-deep')).status, 'accepted');
  const crdt = await Client.open(`${openBridge.url}/crdt?channel=deep-crdt`);
  sockets.push(crdt);
  await crdt.waitFor((ms) => ms.some((m) => m.type === 'connected'), 10000, 'connected');
  crdt.send(`{"type":"update","siteId":"s","version":1,"changes":${'['.repeat(100000)}${']'.repeat(100000)}}`);
  await crdt.waitFor((ms) => ms.some((m) => m.type === 'error'), 10000, 'the error');
  assert.equal(crdt.ofType('error')[0].payload.code, 'invalid_json');
  await alive();
  assert.equal(await head(openBridge, 'deep-crdt'), 0);
});

test('a frame of 100,000 keys is refused too_large, and the socket stays usable', async () => {
  const keys = [];
  for (let i = 0; i < 100000; i++) keys.push(`"${i.toString(36)}":0`);
  const frame = `{"type":"heartbeat","payload":{${keys.join(',')}}}`;
  assert.ok(frame.length < 1 << 20);
  const c = await open(openBridge, 'channel=keys');
  await opened(c);
  c.send(frame);
  c.send(`{"type":"patch","payload":{"id":"k","op":"opaque","data":{${keys.join(',')}}}}`);
  await c.waitFor((ms) => ms.filter((m) => m.type === 'error').length === 2, 10000, 'two errors');
  for (const e of c.ofType('error')) assert.equal(e.payload.code, 'too_large');
  // Under the value limit but over syncd's patch size: refused by the bridge, as syncd would.
  c.patch({ ...node('big'), data: { label: 'Blob', properties: { text: 'x'.repeat(200000) } } });
  const big = await c.ack('big');
  assert.equal(big.status, 'rejected');
  assert.equal(big.code, 'too_large');
  c.patch(node('after-keys'));
  assert.equal((await c.ack('after-keys')).status, 'accepted');
  assert.equal(await head(openBridge, 'keys'), 1);
  await alive();
});

test('time claims out of range are malformed, in syncd and in the bridge alike', async () => {
  for (const claims of [{ exp: 1e17 }, { exp: -1 }, { nbf: 1e300 }, { iat: 'now' }]) {
    const token = sign({ sub: 'eve', sync: { read: ['*'], write: ['*'] }, ...claims });
    const c = await open(authBridge, `channel=t&token=${token}`).catch(() => null);
    assert.ok(c, 'the upgrade itself succeeds');
    assert.match(await errorThenClose(c, 'unauthenticated'), /malformed token: exp, nbf and iat/);
  }
  // In range but far: accepted, and the socket stays open.
  const far = await open(authBridge, `channel=t&token=${sign({ sub: 'eve', exp: 253402300799, sync: { read: ['*'], write: ['*'] } })}`);
  await opened(far);
  far.patch({ ...node('far'), clientId: 'eve' });
  assert.equal((await far.ack('far')).status, 'accepted');
  far.close();
  await alive();
});

test('caps: sockets per address and per subject, request heads slow or large', async () => {
  const held = [];
  for (let i = 0; i < 3; i++) {
    const c = await Client.open(`${capBridge.url}/sync?channel=cap`);
    held.push(c);
    await opened(c);
  }
  const fourth = await Client.open(`${capBridge.url}/sync?channel=cap`);
  assert.match(await errorThenClose(fourth, 'rate_limited'), /--max-sockets-per-address/);
  held.pop().close();
  await held[0].waitFor(() => true, 100);
  const deadline = Date.now() + 10000;
  let again;
  for (;;) {  // the closed socket's place comes back once the bridge has seen the close
    again = await Client.open(`${capBridge.url}/sync?channel=cap`);
    await again.waitFor((ms, self) => ms.length > 0 || self.closed, 10000, 'an answer');
    if (again.ofType('sync_state').length > 0) break;
    assert.ok(Date.now() < deadline, 'the place never came back');
    await new Promise((r) => setTimeout(r, 100));
  }
  held.push(again);

  const carol = mint('carol');
  for (let i = 0; i < 3; i++) await opened(await open(authBridge, `channel=c&token=${carol}`));
  assert.match(await errorThenClose(await open(authBridge, `channel=c&token=${carol}`), 'rate_limited'),
    /--max-sockets-per-subject/);
  await opened(await open(authBridge, `channel=c&token=${mint('dave')}`));  // another subject is not affected

  // A request head sent too slowly is cut off; one too large gets 431.
  const slow = net.connect(capBridge.port, '127.0.0.1');
  slow.on('error', () => {});
  slow.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  await new Promise((resolve) => slow.on('close', resolve));
  const big = net.connect(capBridge.port, '127.0.0.1');
  let answer = '';
  big.on('data', (d) => { answer += d; });
  big.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(4096)}\r\n\r\n`);
  await new Promise((resolve) => big.on('close', resolve));
  assert.match(answer, /^HTTP\/1\.1 431/);
  for (const c of held) c.close();
  await alive();
});

// The worst frames within the limits: a patch of 19,990 values filling
// 1 MiB (parsed, converted, refused too_large by the bridge), a
// heartbeat of as many keys, and nesting 100,000 deep. Masked once.
function worstFrames() {
  const fields = [];
  for (let i = 0; i < 19990; i++) fields.push(`"f${i}":"${'x'.repeat(38)}"`);
  const data = `{${fields.join(',')}}`;
  return [
    `{"type":"patch","payload":{"id":"w","op":"opaque","data":${data}}}`,
    `{"type":"heartbeat","payload":${data}}`,
    `{"type":"patch","payload":${'['.repeat(100000)}${']'.repeat(100000)}}`,
  ].map(textFrame);
}

// Broadcast latencies at the bystander, in ms: `n` patches from the writer,
// one every `gap` ms, each timed from send to arrival.
async function latencies(writer, bystander, tag, n, gap = 10) {
  const sent = new Map();
  const arrived = new Map();
  bystander.send({ type: 'heartbeat', payload: null });  // a live client, as far as the idle timeout goes
  const onMessage = (data) => {
    const m = JSON.parse(data.toString());
    if (m.type === 'patch_broadcast' && sent.has(m.payload.id)) arrived.set(m.payload.id, performance.now());
  };
  bystander.ws.on('message', onMessage);
  for (let i = 0; i < n; i++) {
    const id = `${tag}-${i}`;
    sent.set(id, performance.now());
    writer.patch(node(id));
    await new Promise((r) => setTimeout(r, gap));
  }
  await bystander.waitFor(() => arrived.size === n, 30000, `${n} broadcasts`);
  bystander.ws.off('message', onMessage);
  return [...arrived].map(([id, at]) => at - sent.get(id));
}
const p99 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('a bystander keeps its broadcast latency while two attackers send the worst frames they can', async () => {
  const bystander = await open(openBridge, 'channel=quiet');
  const writer = await open(openBridge, 'channel=quiet');
  await opened(bystander);
  await opened(writer);
  await latencies(writer, bystander, 'warm', 50);

  // Quiet and attacked windows alternate, so that other load on the
  // machine weighs on both alike.
  const frames = worstFrames();
  let sentFrames = 0;
  const replies = [];
  const quiet = [];
  const loud = [];
  for (let round = 0; round < 3; round++) {
    quiet.push(...await latencies(writer, bystander, `quiet${round}`, 100));
    let attacking = true;
    const attack = async () => {
      const s = await RawSocket.open(openBridge.port, '/sync?channel=attack');
      while (attacking && !s.ended) {
        if (!s.sendText(frames[sentFrames++ % frames.length])) await new Promise((r) => s.sock.once('drain', r));
      }
      replies.push(...s.messages());
      s.destroy();
    };
    const attackers = [attack(), attack()];
    await new Promise((r) => setTimeout(r, 300));  // their buffers fill, the bridge reads at its rate
    loud.push(...await latencies(writer, bystander, `loud${round}`, 100));
    attacking = false;
    await Promise.all(attackers);
    // The next quiet window starts once the bridge has let the attackers go.
    const deadline = Date.now() + 20000;
    while ((await (await fetch(`${openBridge.http}/stats`)).json()).channels.attack) {
      assert.ok(Date.now() < deadline, 'the attackers\' sockets never closed');
      await new Promise((r) => setTimeout(r, 50));
    }
    await latencies(writer, bystander, `settle${round}`, 20);
  }

  const summary = `quiet p50 ${p50(quiet).toFixed(1)} p99 ${p99(quiet).toFixed(1)} ms; under attack p50 ` +
    `${p50(loud).toFixed(1)} p99 ${p99(loud).toFixed(1)} ms; ${sentFrames} attack frames sent, ${replies.length} answered`;
  console.log(summary);
  assert.ok(replies.length > 0 && replies.every((m) => m.type === 'error' || m.type === 'sync_state' ||
    (m.type === 'patch_response' && m.payload.status === 'rejected')), 'attackers get errors');
  // Within 2x the quiet p99 (and 5 ms, so a sub-millisecond quiet figure
  // is not held to scheduler noise). The median too: on a busy machine the
  // quiet p99 is noise, and the median is what a hogged I/O thread moves.
  // Under the sanitizers (SYNC_SANITIZED=1, set by scripts/test) parsing
  // is several times slower than in the servers people run, so there only
  // the median is held to the bound.
  if (process.env.SYNC_SANITIZED !== '1') assert.ok(p99(loud) <= Math.max(2 * p99(quiet), p99(quiet) + 5), summary);
  assert.ok(p50(loud) <= Math.max(2 * p50(quiet), p50(quiet) + 2), summary);
  await alive();
  assert.equal(await head(openBridge, 'attack'), 0, 'an attack frame was stored');
});
