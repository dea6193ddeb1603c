// Socket.IO fan-out load: N readers and W writers on one channel of a
// Socket.IO server speaking the bridge's dialect (sync-bridge's /socket.io/,
// or relay.mjs beside this file). Each writer sends `--rate` changes a second
// (one `sync:change` each, fixed schedule) for `--seconds`; each change
// carries its send time. Every reader must get every accepted change, each
// writer's in the order sent and all in version order. Prints one JSON line:
// deliveries/s, publish->receive latency p50/p99/max (ms), and the checks.
// Exits 1 when a check fails.
//
//   node fanout.mjs --url http://127.0.0.1:8080 [--readers 1000] [--writers 4]
//     [--rate 20] [--seconds 10] [--workers 1] [--channel NAME] [--token JWT]
//     [--connect-concurrency 50] [--drain-timeout 30]
//
// Readers run in --workers worker threads (websocket transport, no
// reconnection: a dropped reader is counted, not hidden); writers run in the
// main thread, so that the readers' work does not delay the send schedule.
// Latency is measured in one process on one clock (performance.timeOrigin +
// performance.now()), so it includes the load tool's own queueing: on a
// machine with few cores, compare servers at the same settings.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { io } from 'socket.io-client';

const now = () => performance.timeOrigin + performance.now();
// Latency histogram: 10 µs buckets up to 10 s, then an overflow list.
const BUCKET_MS = 0.01;
const BUCKETS = 1_000_000;

function options() {
  const o = { url: null, readers: 1000, writers: 4, rate: 20, seconds: 10, workers: 1, channel: `fanout-${Date.now()}`,
    token: null, connectConcurrency: 50, drainTimeout: 30 };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--help' || a[i] === '-h') {
      console.log('Usage: node fanout.mjs --url http://HOST:PORT [--readers 1000] [--writers 4] [--rate 20 (changes/s per writer)]\n' +
        '  [--seconds 10] [--workers 1 (reader threads)] [--channel NAME] [--token JWT] [--connect-concurrency 50] [--drain-timeout 30 (s)]');
      process.exit(0);
    }
    const key = a[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    if (!(key in o) || i + 1 >= a.length) throw new Error(`unknown flag or missing value: ${a[i]}`);
    o[key] = typeof o[key] === 'number' ? Number(a[++i]) : a[++i];
  }
  if (!o.url) throw new Error('--url is required (e.g. http://127.0.0.1:8080)');
  for (const k of ['readers', 'writers', 'rate', 'seconds', 'workers', 'connectConcurrency', 'drainTimeout']) {
    if (!(o[k] > 0)) throw new Error(`--${k} must be > 0`);
  }
  return o;
}

// A socket that joined `channel`; rejects on a connect_error or a failed join.
async function joinedSocket(url, channel, token) {
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20000,
    ...(token ? { auth: { token } } : {}) });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const ack = await socket.timeout(20000).emitWithAck('sync:join', { channel });
  if (!ack?.success) throw new Error(`sync:join refused: ${JSON.stringify(ack)}`);
  return socket;
}

// Runs `fn(i)` for i < n, at most `limit` at a time.
async function pool(n, limit, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, limit) }, async () => {
    while (next < n) { const i = next++; out[i] = await fn(i); }
  }));
  return out;
}

// ---- Reader threads ------------------------------------------------------------

async function readerThread({ url, channel, token, count, concurrency, writers }) {
  const hist = new Uint32Array(BUCKETS);
  const overflow = [];
  const stats = { deliveries: 0, outOfOrder: 0, duplicates: 0, disconnects: 0, problems: [], first: Infinity, last: 0 };
  // Per reader: the next k expected from each writer, and the last version.
  const readers = [];
  const problem = (what) => { if (stats.problems.length < 10) stats.problems.push(what); };
  const onChanges = (r) => (changes) => {
    const t = now();
    if (!Array.isArray(changes)) return problem(`sync:changes without an array: ${JSON.stringify(changes).slice(0, 100)}`);
    for (const c of changes) {
      const d = c?.data;
      if (!d || !Number.isInteger(d.w) || !Number.isInteger(d.k) || typeof d.sentAt !== 'number') { problem(`not a bench change: ${JSON.stringify(c).slice(0, 100)}`); continue; }
      stats.deliveries++;
      if (t < stats.first) stats.first = t;
      stats.last = t;
      const ms = t - d.sentAt;
      const b = Math.floor(ms / BUCKET_MS);
      if (b >= 0 && b < BUCKETS) hist[b]++;
      else overflow.push(ms);
      if (c.timestamp <= r.version) { stats.outOfOrder++; problem(`reader ${r.i}: version ${c.timestamp} after ${r.version}`); }
      r.version = Math.max(r.version, c.timestamp);
      const want = r.next[d.w];
      if (d.k === want) r.next[d.w]++;
      else if (d.k < want) { stats.duplicates++; problem(`reader ${r.i}: writer ${d.w} change ${d.k} again (expected ${want})`); }
      else { stats.outOfOrder++; problem(`reader ${r.i}: writer ${d.w} change ${d.k}, expected ${want}`); r.next[d.w] = d.k + 1; }
    }
  };
  const t0 = now();
  await pool(count, concurrency, async (i) => {
    const socket = await joinedSocket(url, channel, token);
    const r = { i, socket, version: 0, next: new Array(writers).fill(0), connected: true };
    socket.on('sync:changes', onChanges(r));
    socket.on('disconnect', (reason) => { r.connected = false; stats.disconnects++; problem(`reader ${i} disconnected: ${reason}`); });
    readers.push(r);
  });
  parentPort.postMessage({ type: 'ready', connectMs: now() - t0 });

  // Told what each writer had accepted: wait until every reader has it all.
  const expected = await new Promise((resolve) => parentPort.once('message', resolve));
  const complete = () => readers.every((r) => r.next.every((k, w) => k >= expected.accepted[w]));
  const deadline = now() + expected.drainTimeoutMs;
  while (!complete() && now() < deadline && readers.some((r) => r.connected)) await sleep(20);
  const missing = readers.reduce((sum, r) => sum + r.next.reduce((s, k, w) => s + Math.max(0, expected.accepted[w] - k), 0), 0);
  for (const r of readers) { r.socket.off('disconnect'); r.socket.disconnect(); }
  parentPort.postMessage({ type: 'done', ...stats, missing, hist, overflow }, [hist.buffer]);
}

// ---- Main thread: writers, and the report ----------------------------------------

async function main() {
  const o = options();
  const runId = Math.random().toString(36).slice(2, 8);
  const per = Array.from({ length: o.workers }, (_, i) => Math.floor(o.readers / o.workers) + (i < o.readers % o.workers ? 1 : 0))
    .filter((n) => n > 0);
  const workers = per.map((count) => new Worker(new URL(import.meta.url), { workerData: { url: o.url, channel: o.channel,
    token: o.token, count, concurrency: Math.max(1, Math.ceil(o.connectConcurrency / per.length)), writers: o.writers } }));
  const messages = workers.map((w) => {
    const queue = [];
    const waiting = [];
    w.on('message', (m) => (waiting.length ? waiting.shift()(m) : queue.push(m)));
    w.on('error', (e) => { console.error(`reader thread failed: ${e.stack ?? e}`); process.exit(2); });
    return () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)));
  });
  const ready = await Promise.all(messages.map((next) => next()));
  const connectMs = Math.max(...ready.map((m) => m.connectMs));

  const writerSockets = await Promise.all(Array.from({ length: o.writers }, () => joinedSocket(o.url, o.channel, o.token)));
  const accepted = new Array(o.writers).fill(0);
  let sent = 0;
  let rejected = 0;
  let ackErrors = 0;
  let lateMs = 0;  // how far behind its schedule the send loop fell, at worst
  const problems = [];
  const pending = [];
  const total = Math.round(o.rate * o.seconds);
  const start = now() + 50;
  // Each writer's changes at start + (k + w / writers) / rate, in one loop.
  const schedule = [];
  for (let k = 0; k < total; k++) for (let w = 0; w < o.writers; w++) schedule.push({ w, k, at: start + ((k + w / o.writers) / o.rate) * 1000 });
  // Acks come back in order per socket; the k-th accepted must be the k-th sent.
  for (const { w, k, at } of schedule) {
    const wait = at - now();
    if (wait > 1) await sleep(wait);
    lateMs = Math.max(lateMs, now() - at);
    const change = { id: `${runId}-w${w}-${k}`, collection: 'bench', documentId: `${runId}-w${w}-${k}`, operation: 'insert',
      data: { w, k, sentAt: now() }, timestamp: Date.now(), userId: `writer-${w}` };
    sent++;
    pending.push(writerSockets[w].timeout(60000).emitWithAck('sync:change', change).then((ack) => {
      if (ack?.success && !ack.duplicate) {
        if (accepted[w] !== k) problems.push(`writer ${w}: change ${k} accepted as the ${accepted[w]}th`);
        accepted[w]++;
      } else {
        rejected++;
        if (problems.length < 10) problems.push(`writer ${w} change ${k}: ${JSON.stringify(ack)}`);
      }
    }, (e) => { ackErrors++; if (problems.length < 10) problems.push(`writer ${w} change ${k}: ${e.message}`); }));
  }
  const sendEnd = now();
  await Promise.all(pending);
  for (const w of workers) w.postMessage({ accepted, drainTimeoutMs: o.drainTimeout * 1000 });
  const done = await Promise.all(messages.map((next) => next()));
  for (const s of writerSockets) s.disconnect();
  await Promise.all(workers.map((w) => w.terminate()));

  // Merge the readers' results.
  const hist = new Float64Array(BUCKETS);
  const overflow = [];
  let deliveries = 0;
  let first = Infinity;
  let last = 0;
  const sum = { outOfOrder: 0, duplicates: 0, disconnects: 0, missing: 0 };
  for (const d of done) {
    const h = new Uint32Array(d.hist.buffer ?? d.hist);
    for (let i = 0; i < BUCKETS; i++) if (h[i]) hist[i] += h[i];
    overflow.push(...d.overflow);
    deliveries += d.deliveries;
    first = Math.min(first, d.first);
    last = Math.max(last, d.last);
    for (const k of Object.keys(sum)) sum[k] += d[k];
    problems.push(...d.problems.slice(0, 10 - Math.min(10, problems.length)));
  }
  overflow.sort((a, b) => a - b);
  const quantile = (q) => {
    if (deliveries === 0) return null;
    const rank = Math.ceil(q * deliveries);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += hist[i];
      if (seen >= rank) return +((i + 1) * BUCKET_MS).toFixed(2);
    }
    return +overflow[Math.min(overflow.length - 1, rank - seen - 1)].toFixed(2);
  };
  let maxMs = overflow.length ? overflow.at(-1) : 0;
  if (!overflow.length) for (let i = BUCKETS - 1; i >= 0; i--) if (hist[i]) { maxMs = (i + 1) * BUCKET_MS; break; }

  const acceptedTotal = accepted.reduce((a, b) => a + b, 0);
  const expectedDeliveries = acceptedTotal * o.readers;
  const complete = deliveries - sum.duplicates === expectedDeliveries && sum.missing === 0 && rejected === 0 && ackErrors === 0;
  const inOrder = sum.outOfOrder === 0 && sum.duplicates === 0;
  const result = {
    url: o.url, channel: o.channel, readers: o.readers, writers: o.writers, ratePerWriter: o.rate, seconds: o.seconds,
    workers: per.length, sent, accepted: acceptedTotal, rejected, ackErrors, expectedDeliveries, deliveries,
    deliveriesPerSec: Math.round(deliveries / Math.max(1e-3, (last - start) / 1000)),
    latencyMs: { p50: quantile(0.5), p99: quantile(0.99), max: +maxMs.toFixed(2) },
    complete, inOrder, missing: sum.missing, duplicates: sum.duplicates, outOfOrder: sum.outOfOrder, disconnects: sum.disconnects,
    connectMs: Math.round(connectMs), sendMs: Math.round(sendEnd - start), drainMs: Math.round(Math.max(0, last - sendEnd)),
    scheduleLagMaxMs: Math.round(lateMs), problems: problems.slice(0, 10),
  };
  console.log(JSON.stringify(result));
  process.exit(complete && inOrder && sum.disconnects === 0 ? 0 : 1);
}

if (isMainThread) {
  main().catch((e) => { console.error(e.stack ?? String(e)); process.exit(2); });
} else {
  // A failure ends the thread with an error, which the main thread reports.
  readerThread(workerData).catch((e) => setImmediate(() => { throw e; }));
}
