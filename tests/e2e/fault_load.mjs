// Load for fault tests, and the checks that follow a fault.
//
// Writers keep sending patches (create_node, each with a fresh id) through a
// gRPC Session or a WebSocket of sync-bridge, a few in flight at a time. Every
// attempt is recorded with its answer: `accepted` / `ignored` with a version
// settle the patch; a rejection `unavailable`, or the stream ending before the
// answer (the patch is then in doubt), puts it back in line to be sent again
// with the same id, after a reconnect if need be. Readers (a gRPC Watch, a
// /sync WebSocket) follow the channel and reconnect from their last version
// whenever their stream ends. `checkLog` then compares what they all saw with
// the log as stored, read in one REPEATABLE READ transaction.
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import WebSocket from 'ws';
import { psql } from './pg_cluster.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const now = () => performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- gRPC ------------------------------------------------------------------

const loadOptions = { keepCase: false, longs: Number, enums: String, defaults: false, oneofs: true };
const { sync } = grpc.loadPackageDefinition(
  protoLoader.loadSync(path.join(here, '../../proto/sync/v1/sync.proto'), loadOptions));
// grpc.health.v1, as in grpc/health/v1/health.proto.
const healthV1 = {
  HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
  HealthCheckResponse: {
    fields: { status: { type: 'ServingStatus', id: 1 } },
    nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
  },
  Health: { methods: { Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' } } },
};
const health = grpc.loadPackageDefinition(protoLoader.fromJSON(
  { nested: { grpc: { nested: { health: { nested: { v1: { nested: healthV1 } } } } } } }, loadOptions)).grpc.health;

export const syncClient = (address) => new sync.v1.Sync(address, grpc.credentials.createInsecure());
export const healthClient = (address) => new health.v1.Health(address, grpc.credentials.createInsecure());

// A unary call with a deadline: resolves to the response, rejects with the
// grpc error (err.code).
export const unary = (client, method, request, deadlineMs = 10000) => new Promise((resolve, reject) => {
  client[method](request, { deadline: new Date(Date.now() + deadlineMs) }, (err, res) => (err ? reject(err) : resolve(res)));
});

// The health service's answer for `service`: SERVING, NOT_SERVING, ... or
// `error <code>` when the call fails.
export async function healthOf(client, service = '') {
  try {
    return (await unary(client, 'Check', { service }, 3000)).status;
  } catch (e) {
    return `error ${e.code}`;
  }
}

// Reads `channel` from version 0 the two streaming ways, a Watch and a
// Session, and resolves once each has delivered version 1 (history read from
// the log); rejects with the first failure, or after `ms`.
export function catchUpReads(client, channel, ms = 10000) {
  const watch = new Promise((resolve, reject) => {
    const call = client.Watch({ channel, fromVersion: 0 });
    const timer = setTimeout(() => { call.cancel(); reject(new Error('Watch from 0: no history within the bound')); }, ms);
    call.on('data', (p) => {
      if (p.serverVersion !== 1) return;
      clearTimeout(timer);
      call.cancel();
      resolve();
    });
    call.on('error', (e) => {
      clearTimeout(timer);
      if (e.code !== grpc.status.CANCELLED) reject(new Error(`Watch from 0 failed: ${grpc.status[e.code]} ${e.details}`));
    });
  });
  const session = new Promise((resolve, reject) => {
    const call = client.Session();
    const timer = setTimeout(() => { call.cancel(); reject(new Error('Session from 0: no history within the bound')); }, ms);
    call.on('data', (m) => {
      if (m.kind !== 'syncState' || !(m.syncState.patches ?? []).some((p) => p.serverVersion === 1)) return;
      clearTimeout(timer);
      call.cancel();
      resolve();
    });
    call.on('error', (e) => {
      clearTimeout(timer);
      if (e.code !== grpc.status.CANCELLED) reject(new Error(`Session from 0 failed: ${grpc.status[e.code]} ${e.details}`));
    });
    call.write({ open: { channel, fromVersion: 0, clientId: 'catch-up' } });
  });
  return Promise.all([watch, session]);
}

// google.protobuf.Struct from plain JSON.
const toValue = (v) => (v === null ? { nullValue: 'NULL_VALUE' }
  : Array.isArray(v) ? { listValue: { values: v.map(toValue) } }
    : typeof v === 'object' ? { structValue: toStruct(v) }
      : { [typeof v === 'number' ? 'numberValue' : typeof v === 'boolean' ? 'boolValue' : 'stringValue']: v });
export const toStruct = (o) => ({ fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toValue(v)])) });

// ---- HTTP ------------------------------------------------------------------

// GET on a connection of its own; resolves to the status code, or `error` /
// `timeout`.
export const httpStatus = (url, timeoutMs = 3000) => new Promise((resolve) => {
  const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
    res.resume();
    resolve(res.statusCode);
  });
  req.on('timeout', () => { req.destroy(); resolve('timeout'); });
  req.on('error', () => resolve('error'));
});

// Polls `probe` every `every` ms until `pred(value)`; resolves to
// {value, at} or rejects after `ms`.
export async function pollUntil(probe, pred, ms, what, every = 100) {
  const deadline = now() + ms;
  let value;
  for (;;) {
    value = await probe();
    if (pred(value)) return { value, at: now() };
    if (now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(value)}`);
    await sleep(every);
  }
}

export async function waitFor(pred, ms, what, every = 50) {
  const deadline = now() + ms;
  while (!pred()) {
    if (now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// Pushes a fresh patch to `channel` every `every` ms until one is accepted;
// resolves to the time it was (performance.now()). Each attempt has a
// deadline, so a stuck call counts as a failed attempt.
export async function acceptedPush(client, channel, ms = 30000, every = 100) {
  const deadline = now() + ms;
  let last = '';
  for (let k = 0; ; k++) {
    const id = `probe-${Date.now()}-${k}`;
    try {
      const res = await unary(client, 'Push', { channel, patches: [grpcPatch(id, 'probe', `pn-${id}`, k)] }, 3000);
      const ack = res.acks[0];
      if (ack.status === 'ACCEPTED') return now();
      last = `${ack.status} ${ack.code ?? ''}`;
    } catch (e) {
      last = `${grpc.status[e.code] ?? e.code}: ${e.details}`;
    }
    if (now() > deadline) throw new Error(`no patch accepted within ${ms} ms; last answer: ${last}`);
    await sleep(every);
  }
}

const jsonPatch = (id, clientId, nodeId, n) => ({
  id, timestamp: Date.now(), clientId, op: 'create_node', nodeId, data: { label: 'Person', properties: { n } },
});
const grpcPatch = (id, clientId, nodeId, n) => {
  const p = jsonPatch(id, clientId, nodeId, n);
  return { ...p, data: toStruct(p.data) };
};

// ---- Writers ---------------------------------------------------------------

// A patch's life: attempts [{sentAt, answeredAt, outcome, code, version}],
// with outcome accepted | ignored | rejected | in-doubt; `final` once
// accepted or ignored.
class Writer {
  constructor(name, channel, { window = 4, interval = 30 } = {}) {
    this.name = name;
    this.channel = channel;
    this.window = window;
    this.interval = interval;
    this.patches = new Map();   // id -> record
    this.resend = [];           // ids to send again, in order
    this.outstanding = new Map();  // id -> attempt on the current connection
    this.events = [];           // {at, what, code}: stream ends, unavailable answers
    this.violations = [];
    this.connected = false;
    this.connecting = false;
    this.nextConnect = 0;
    this.connectTimes = [];     // ms from a connection attempt to its first answer
    this.producing = true;
    this.running = false;
    this.n = 0;
    this.gen = 0;
    this.holdUntil = 0;         // after an `unavailable`, sending waits a moment
  }

  start() {
    this.running = true;
    this.timer = setInterval(() => this.tick(), this.interval);
    return this;
  }

  async stop() {
    this.running = false;
    this.producing = false;
    clearInterval(this.timer);
    this.disconnect();
  }

  tick() {
    if (!this.running) return;
    if (!this.connected) {
      if (!this.connecting && now() >= this.nextConnect) {
        this.connecting = true;
        this.connectStarted = now();
        this.gen++;
        this.connect(this.gen);
      }
      return;
    }
    if (now() < this.holdUntil) return;
    let fresh = 1;  // at most one new patch per tick
    while (this.outstanding.size < this.window) {
      let id = this.resend.shift();
      if (id === undefined) {
        if (!this.producing || fresh-- <= 0) break;
        id = `${this.name}-${++this.n}`;
        this.patches.set(id, { id, n: this.n, attempts: [], final: null });
      }
      const attempt = { sentAt: now(), gen: this.gen };
      this.patches.get(id).attempts.push(attempt);
      this.outstanding.set(id, attempt);
      this.sendPatch(id, this.patches.get(id).n);
    }
  }

  // The connection answered (opened, or failed).
  connectAnswered(gen) {
    if (gen !== this.gen || !this.connecting) return;
    this.connecting = false;
    this.connectTimes.push(now() - this.connectStarted);
  }

  opened(gen) {
    if (gen !== this.gen) return;
    this.connectAnswered(gen);
    this.connected = true;
  }

  // An answer for `id`: {status: accepted|ignored|rejected, version, code}.
  answer(gen, id, status, version, code) {
    const attempt = this.outstanding.get(id);
    if (gen !== this.gen || !attempt) {
      this.violations.push(`${this.name}: an answer for ${id} that was not in flight (${status})`);
      return;
    }
    this.outstanding.delete(id);
    Object.assign(attempt, { answeredAt: now(), outcome: status, version, code });
    const rec = this.patches.get(id);
    if (status === 'accepted' || status === 'ignored') {
      if (rec.final && rec.final.version !== version) {
        this.violations.push(`${this.name}: ${id} was ${rec.final.status} at ${rec.final.version}, then ${status} at ${version}`);
      }
      if (status === 'accepted' && rec.final) this.violations.push(`${this.name}: ${id} accepted twice`);
      rec.final ??= { status, version, at: attempt.answeredAt };
    } else if (status === 'rejected' && code === 'unavailable') {
      this.events.push({ at: attempt.answeredAt, what: 'unavailable ack', sentAt: attempt.sentAt });
      this.resend.push(id);
      this.holdUntil = attempt.answeredAt + 200;
    } else {
      this.violations.push(`${this.name}: ${id} ${status} ${code}`);
      rec.final ??= { status, version, at: attempt.answeredAt };
    }
  }

  // The stream ended: whatever was in flight is in doubt and goes again.
  ended(gen, what, code) {
    if (gen !== this.gen) return;
    const at = now();
    this.connectAnswered(gen);
    this.events.push({ at, what, code });
    this.connected = false;
    this.nextConnect = at + 200;
    const doubtful = [...this.outstanding.entries()].sort((a, b) => a[1].sentAt - b[1].sentAt);
    for (const [id, attempt] of doubtful) {
      Object.assign(attempt, { answeredAt: at, outcome: 'in-doubt', code });
      this.resend.push(id);
    }
    this.outstanding.clear();
    this.resend.sort((a, b) => this.patches.get(a).n - this.patches.get(b).n);
  }

  // Stops making new patches; resolves once every patch is settled
  // (accepted or ignored), resending as needed.
  async settle(ms = 30000) {
    this.producing = false;
    try {
      await waitFor(() => this.resend.length === 0 && this.outstanding.size === 0 &&
        [...this.patches.values()].every((p) => p.final), ms, `${this.name} to settle`);
    } catch (e) {
      const t = now();
      const unsettled = [...this.patches.values()].filter((p) => !p.final);
      const show = (p) => `${p.id} [${p.attempts.map((a) => `sent ${Math.round(t - a.sentAt)} ms ago: ` +
        `${a.outcome ?? 'no answer'}${a.code ? ` ${a.code}` : ''}`).join('; ')}]`;
      throw new Error(`${e.message}: ${unsettled.length} unsettled (${unsettled.slice(0, 3).map(show).join(', ')}), ` +
        `${this.outstanding.size} in flight, connected ${this.connected}; last events: ` +
        `${JSON.stringify(this.events.slice(-4).map((x) => ({ ...x, at: Math.round(t - x.at) })))}`);
    }
  }

  accepted() { return [...this.patches.values()].filter((p) => p.final?.status === 'accepted').length; }

  // id -> version of every patch settled so far.
  settledVersions() {
    return new Map([...this.patches.values()].filter((p) => p.final).map((p) => [p.id, p.final.version]));
  }

  // The longest wait for an answer (ack or end of stream), over answered
  // attempts and those still in flight, and for a connection to answer.
  longestWait() {
    let ms = 0;
    const t = now();
    for (const p of this.patches.values()) {
      for (const a of p.attempts) ms = Math.max(ms, (a.answeredAt ?? t) - a.sentAt);
    }
    const connect = Math.max(0, ...this.connectTimes, this.connecting ? t - this.connectStarted : 0);
    return { answer: Math.round(ms), connect: Math.round(connect) };
  }

  // Attempts sent at or after `from` and answered before `to`.
  attemptsBetween(from, to) {
    const out = [];
    for (const p of this.patches.values()) {
      for (const a of p.attempts) if (a.sentAt >= from && a.answeredAt !== undefined && a.answeredAt < to) out.push({ id: p.id, ...a });
    }
    return out;
  }

  // Rejected `unavailable` means nothing was stored: a patch later found
  // `ignored` must have been stored by an attempt whose outcome was unknown.
  falseRejections() {
    const out = [];
    for (const p of this.patches.values()) {
      if (p.final?.status !== 'ignored') continue;
      const before = p.attempts.filter((a) => a.outcome !== 'ignored');
      if (before.length > 0 && before.every((a) => a.outcome === 'rejected')) {
        out.push(`${p.id}: rejected ${before.map((a) => a.code).join(',')}, yet stored at ${p.final.version}`);
      }
    }
    return out;
  }
}

// Writes through a gRPC Session.
export class SessionWriter extends Writer {
  constructor(client, channel, name = 'grpc', opts) {
    super(name, channel, opts);
    this.client = client;
  }

  connect(gen) {
    const call = this.client.Session();
    this.call = call;
    let done = false;
    const end = (what, code) => {
      if (done) return;
      done = true;
      this.ended(gen, what, code);
    };
    call.on('data', (m) => {
      if (m.kind === 'opened') this.opened(gen);
      else if (m.kind === 'ack') {
        const a = m.ack;
        this.answer(gen, a.patchId, a.status.toLowerCase(), a.serverVersion ?? 0, a.code);
      }
    });
    call.on('error', (e) => end('stream failed', grpc.status[e.code] ?? e.code));
    call.on('end', () => end('stream ended', 'OK'));
    call.write({ open: { channel: this.channel, noHistory: true, clientId: this.name } });
  }

  sendPatch(id, n) {
    this.call.write({ patch: grpcPatch(id, this.name, `${this.name}-n${n}`, n) });
  }

  disconnect() {
    this.connected = false;
    this.call?.cancel();
  }
}

// Writes through a /sync WebSocket of sync-bridge.
export class WsWriter extends Writer {
  constructor(bridgeUrl, channel, name = 'ws', opts) {
    super(name, channel, opts);
    this.bridgeUrl = bridgeUrl;
  }

  connect(gen) {
    const ws = new WebSocket(`${this.bridgeUrl}/sync?channel=${this.channel}&since=head`);
    this.ws = ws;
    this.lastError = null;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'sync_state') {
        if (!this.connected) this.opened(gen);
      } else if (m.type === 'patch_response') {
        const a = m.payload;
        this.answer(gen, a.patchId, a.status, a.serverVersion, a.code);
      } else if (m.type === 'error') {
        this.lastError = m.payload.code;
        this.events.push({ at: now(), what: 'error frame', code: `${m.payload.code}: ${m.payload.message}` });
        // Before a close 1013, or alone after a Push whose outcome is
        // unknown: then the bridge keeps the socket and says how many
        // patches went unanswered, not which (acks of earlier ones may still
        // wait for their version's turn). Like a client that cannot tell,
        // start over if the socket stays open: reconnect and resend all that
        // is unanswered (what was stored comes back `ignored`).
        if (m.payload.code === 'unavailable') {
          setTimeout(() => {
            if (ws.readyState === WebSocket.OPEN) ws.terminate();
          }, 1000);
        }
      }
    });
    ws.on('close', (code) => this.ended(gen, 'socket closed', `${code}${this.lastError ? ` ${this.lastError}` : ''}`));
    ws.on('error', () => {});
  }

  sendPatch(id, n) {
    this.ws.send(JSON.stringify({ type: 'patch', payload: jsonPatch(id, this.name, `${this.name}-n${n}`, n) }));
  }

  disconnect() {
    this.connected = false;
    this.ws?.terminate();
  }
}

// ---- Readers ---------------------------------------------------------------

class Reader {
  constructor(name, channel) {
    this.name = name;
    this.channel = channel;
    this.last = 0;
    this.ids = [];           // ids[v] = the patch id seen at version v
    this.violations = [];    // gaps, duplicates
    this.reconnects = 0;
    this.ends = [];          // why each stream ended
    this.running = false;
  }

  start() {
    this.running = true;
    this.reopen();
    return this;
  }

  reopen() {
    if (!this.running) return;
    this.openedAt = now();
    this.open();
  }

  seen(version, id) {
    if (version !== this.last + 1) {
      this.violations.push(`${this.name}: got version ${version} after ${this.last}`);
      if (version <= this.last) return;  // a duplicate
    }
    this.ids[version] = id;
    this.last = version;
  }

  streamEnded(why) {
    if (!this.running) return;  // stopped
    this.ends.push({ openedAt: this.openedAt, at: now(), why });
    this.reconnects++;
    setTimeout(() => this.reopen(), 200);
  }

  async caughtUp(head, ms = 30000) {
    await waitFor(() => this.last >= head, ms, `${this.name} to reach version ${head} (at ${this.last}; ends: ${this.ends.slice(-3).map((e) => e.why).join('; ')})`);
  }
}

// Follows a channel with gRPC Watch.
export class WatchReader extends Reader {
  constructor(client, channel, name = 'watch') {
    super(name, channel);
    this.client = client;
  }

  open() {
    const call = this.client.Watch({ channel: this.channel, fromVersion: this.last });
    this.call = call;
    let done = false;
    const end = (why) => {
      if (done) return;
      done = true;
      this.streamEnded(why);
    };
    call.on('data', (p) => this.seen(p.serverVersion, p.id));
    call.on('error', (e) => end(`${grpc.status[e.code] ?? e.code}: ${e.details}`));
    call.on('end', () => end('OK'));
  }

  stop() {
    this.running = false;
    this.call?.cancel();
  }
}

// Follows a channel through a /sync WebSocket of sync-bridge.
export class WsReader extends Reader {
  constructor(bridgeUrl, channel, name = 'ws-reader') {
    super(name, channel);
    this.bridgeUrl = bridgeUrl;
    this.closes = [];  // close codes, with the error frame before them
  }

  open() {
    const ws = new WebSocket(`${this.bridgeUrl}/sync?channel=${this.channel}&since=${this.last}`);
    this.ws = ws;
    let error = null;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'sync_state') for (const p of m.payload.patches) this.seen(p.serverVersion, p.id);
      else if (m.type === 'patch_broadcast') this.seen(m.payload.serverVersion, m.payload.id);
      else if (m.type === 'error') error = m.payload.code;
    });
    ws.on('close', (code) => {
      this.closes.push({ at: now(), code, error });
      this.streamEnded(`${code} ${error ?? ''}`);
    });
    ws.on('error', () => {});
  }

  stop() {
    this.running = false;
    this.ws?.terminate();
  }
}

// ---- The stored log ----------------------------------------------------------

// The channel's head and its log [{v, id}], in one REPEATABLE READ transaction.
export async function readLog(url, channel) {
  const out = await psql(url, `
    BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
    SELECT coalesce((SELECT head FROM channels WHERE name = '${channel}'), 0);
    SELECT coalesce(json_agg(json_build_object('v', p.version, 'id', p.patch_id) ORDER BY p.version), '[]')
      FROM patches p JOIN channels c ON c.id = p.channel_id WHERE c.name = '${channel}';
    COMMIT;`);
  const [head, rows] = out.trim().split('\n');
  return { head: Number(head), rows: JSON.parse(rows) };
}

// Compares the stored log of `channel` with what writers and readers saw;
// resolves to a list of problems (empty when all is well). `ackedBefore`:
// id -> version of patches acknowledged before the fault.
export async function checkLog(url, channel, { writers, readers = [], ackedBefore = new Map() }) {
  const problems = [];
  const { head, rows } = await readLog(url, channel);
  const versions = rows.map((r) => r.v);
  if (head !== rows.length || versions.some((v, i) => v !== i + 1)) {
    const gap = versions.findIndex((v, i) => v !== i + 1);
    problems.push(`the log is not 1..head (head ${head}, ${rows.length} rows${gap >= 0 ? `, version ${gap + 1} missing` : ''})`);
  }
  const stored = new Map(rows.map((r) => [r.id, r.v]));
  const written = new Set();
  for (const w of writers) {
    problems.push(...w.violations, ...w.falseRejections().map((s) => `${w.name}: ${s}`));
    for (const p of w.patches.values()) {
      written.add(p.id);
      if (!p.final) problems.push(`${w.name}: ${p.id} never settled`);
      else if (stored.get(p.id) !== p.final.version) {
        problems.push(`${w.name}: ${p.id} was ${p.final.status} at ${p.final.version}, stored at ${stored.get(p.id)}`);
      }
    }
  }
  for (const [id, v] of ackedBefore) {
    if (stored.get(id) !== v) problems.push(`${id}, acked at ${v} before the fault, is stored at ${stored.get(id)}`);
  }
  for (const r of rows) if (!written.has(r.id)) problems.push(`version ${r.v} holds ${r.id}, which no writer sent`);
  for (const r of readers) {
    problems.push(...r.violations);
    try {
      await r.caughtUp(head);
    } catch (e) {
      problems.push(e.message);
      continue;
    }
    for (const { v, id } of rows) {
      if (r.ids[v] !== id) {
        problems.push(`${r.name} saw ${r.ids[v]} at version ${v}, the log holds ${id}`);
        break;
      }
    }
  }
  return { problems, head };
}

// Answers from writers in [from, to): how many, and what kind.
export function answersBetween(writers, from, to) {
  const attempts = writers.flatMap((w) => w.attemptsBetween(from, to).map((a) => ({ writer: w.name, ...a })));
  const events = writers.flatMap((w) => w.events.filter((e) => e.at >= from && e.at < to).map((e) => ({ writer: w.name, ...e })));
  return { attempts, events };
}

// Streams of `readers` opened at or after `from` that failed (ended with
// anything but a clean end): reads that should have succeeded.
export function failedReadsSince(readers, from) {
  return readers.flatMap((r) => r.ends.filter((e) => e.openedAt >= from && e.why !== 'OK')
    .map((e) => `${r.name}: a stream opened ${Math.round(e.openedAt - from)} ms after the database was back failed: ${e.why}`));
}

// Problems if any of `procs` (from startSyncd / startBridge) has exited.
export function exited(procs) {
  return procs.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null)
    .map((p) => `a process exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.output().slice(-3000)}`);
}

// Ids and versions of every patch acknowledged so far.
export function ackedSoFar(writers) {
  return new Map(writers.flatMap((w) => [...w.settledVersions()]));
}

export const ms = (x) => `${Math.round(x)} ms`;

// ---- Shared by the fault suites ------------------------------------------------

// The longest any patch or connection may wait for an answer, in ms.
export const ANSWER_BOUND = 10000;

// Each writer has `n` more patches accepted than when this was called.
export async function progress(writers, n, bound, what) {
  const base = writers.map((w) => w.accepted());
  await waitFor(() => writers.every((w, i) => w.accepted() >= base[i] + n), bound,
    `${n} more patches accepted from each writer ${what} (${writers.map((w) => `${w.name}: ${w.accepted()}`).join(', ')})`);
}

// Problems if a writer waited longer than `bound` for an answer to a patch,
// or for a connection attempt to be answered; prints the longest waits.
export function hangs(writers, bound = ANSWER_BOUND, connectBound = bound) {
  const problems = [];
  for (const w of writers) {
    const wait = w.longestWait();
    console.log(`# ${w.name}: longest wait for an answer ${ms(wait.answer)}, for a connection ${ms(wait.connect)}`);
    if (wait.answer > bound) problems.push(`${w.name} waited ${ms(wait.answer)} for an answer to a patch (bound ${ms(bound)})`);
    if (wait.connect > connectBound) problems.push(`${w.name} waited ${ms(wait.connect)} for a connection to answer (bound ${ms(connectBound)})`);
  }
  return problems;
}

// The first moment after `from` a writer was told its patches were not
// stored (an `unavailable` ack, an error frame, its stream ending), or null.
export function firstRefusal(writers, from) {
  const at = writers.flatMap((w) => w.events.filter((e) => e.at >= from).map((e) => e.at));
  return at.length ? Math.min(...at) : null;
}

// The median and longest time from sending to `accepted`, over attempts
// sent in [from, to).
export function ackLatency(writers, from = 0, to = Infinity) {
  const t = writers.flatMap((w) => [...w.patches.values()].flatMap((p) => p.attempts))
    .filter((a) => a.outcome === 'accepted' && a.sentAt >= from && a.sentAt < to).map((a) => a.answeredAt - a.sentAt)
    .sort((a, b) => a - b);
  return { n: t.length, median: t[Math.floor(t.length / 2)] ?? NaN, max: t.at(-1) ?? NaN };
}

// SIGTERM, and SIGKILL if the process has not exited `ms` later (said so).
export async function stopProcess(proc, name, ms = 20000) {
  let timer;
  const killed = new Promise((resolve) => {
    timer = setTimeout(() => {
      console.log(`# ${name} did not exit within ${ms} ms of SIGTERM; killed`);
      resolve(proc.stop('SIGKILL'));
    }, ms);
  });
  const code = await Promise.race([proc.stop('SIGTERM'), killed]);
  clearTimeout(timer);
  return code;
}
