// Presence churn through sync-bridge: N WebSockets on one channel, each a
// presence member, each sending its state `--rate` times a second, each
// living about `--lifetime` seconds and then reconnecting under a new
// clientId, so members join and leave all the time. One more socket, the
// observer, subscribes to the channel's presence and timestamps every
// member it sees join (a presence_join, or a new member in a whole
// presence_state list) and leave; the latency is from the moment the
// member's socket opened (its `open` event) to the moment the observer
// received the frame that showed it. Prints one JSON line at the end.
//
//   node churn.mjs --url ws://127.0.0.1:8080 [--connections 1000] [--rate 10]
//     [--lifetime 3] [--subscribe 1] [--seconds 0] [--workers 1] [--channel NAME]
//     [--connect-concurrency 50] [--drain 2] [--quick]
//
// --subscribe 1: the churning sockets open with ?presence=1 too (each gets
//   every presence frame of the channel); 0: they are members only.
// --lifetime L: each connection lives uniform(0.5 L, 1.5 L) seconds (the
//   first one uniform(0, 1.5 L), so that the population is mixed from the
//   start), then closes (1000) and a new one opens in its place at once.
// --seconds S: measured time after the ramp (every connection open once);
//   0: until SIGTERM or SIGINT. "# ready" goes to stderr when measuring
//   starts. Then reconnecting stops, the observer listens --drain seconds
//   more (joins of the last connections arrive), and everything closes.
// --quick: 100 connections, lifetime 1.5 s, 3 s measured, drain 2 s; exits
//   1 when a check fails (a join or leave the observer never saw, an error
//   frame, a socket the bridge closed, a failed connect). Without --quick
//   the same checks are reported in "checks" and the exit code is 0.
//
// The JSON line (its fields are described in report.mjs): join and leave
// latencies as the observer saw them, what it never saw by the end of the
// drain, what the observer and the churning sockets received and sent per
// second, and checks.
//
// The churning sockets (churners.mjs) run in --workers worker threads and
// the observer in the main thread, so their work does not delay its
// timestamps. Times are one clock (performance.timeOrigin +
// performance.now()) in every thread. A worker that cannot keep up with
// what it receives (many subscribers each getting whole lists) takes its
// `open` timestamps late, so joinSeenMs understates (negative minimums show
// it); joinSeenFromConnectedAtMs does not depend on the workers.
import { Worker } from 'node:worker_threads';
import WebSocket from 'ws';
import { now, sleep, socketUrl } from './churners.mjs';
import { report } from './report.mjs';

function options() {
  const o = { url: null, connections: 1000, rate: 10, lifetime: 3, subscribe: 1, seconds: 0, workers: 1,
    channel: `presence-${Date.now()}`, connectConcurrency: 50, drain: 2, quick: false };
  const a = process.argv.slice(2);
  const given = new Set();
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--help' || a[i] === '-h') {
      console.log('Usage: node churn.mjs --url ws://HOST:PORT [--connections 1000] [--rate 10 (updates/s each)]\n' +
        '  [--lifetime 3 (s, mean)] [--subscribe 1 (churners ask presence=1)] [--seconds 0 (0: until SIGTERM)]\n' +
        '  [--workers 1] [--channel NAME] [--connect-concurrency 50] [--drain 2 (s)] [--quick]');
      process.exit(0);
    }
    if (a[i] === '--quick') { o.quick = true; continue; }
    const key = a[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    if (!(key in o) || key === 'quick' || i + 1 >= a.length) throw new Error(`unknown flag or missing value: ${a[i]}`);
    o[key] = typeof o[key] === 'number' ? Number(a[++i]) : a[++i];
    given.add(key);
  }
  if (o.quick) {
    for (const [k, v] of Object.entries({ connections: 100, lifetime: 1.5, seconds: 3, drain: 2 })) {
      if (!given.has(k)) o[k] = v;
    }
  }
  if (!o.url) throw new Error('--url is required (e.g. ws://127.0.0.1:8080)');
  o.url = o.url.replace(/\/+$/, '');
  for (const k of ['connections', 'rate', 'lifetime', 'workers', 'connectConcurrency']) {
    if (!(o[k] > 0)) throw new Error(`--${k} must be > 0`);
  }
  if (o.rate > 20) throw new Error('--rate over 20: the bridge refuses more than 20 presence updates a second');
  if (!(o.seconds >= 0) || !(o.drain >= 0)) throw new Error('--seconds and --drain must be >= 0');
  return o;
}

// The observer first, so that the churners' first joins are seen; then the
// workers; after the measured time and the drain, report.mjs's JSON line.
async function main() {
  const o = options();
  const seen = new Map();  // clientId -> { at, via, connectedAt }
  const left = new Map();  // clientId -> at
  const members = new Map();  // connectionId -> clientId, as the observer knows them
  const obs = { frames: {}, bytes: 0, lists: 0, membersMax: 0, membersLast: 0, errors: 0, closed: null };
  let gotList;
  const listed = new Promise((resolve) => { gotList = resolve; });

  const observer = new WebSocket(socketUrl(o, 'observer', 1), { perMessageDeflate: false, maxPayload: 256 << 20 });
  observer.on('message', (data) => {
    const at = now();
    obs.bytes += data.length;
    let frame;
    try { frame = JSON.parse(data); } catch { obs.errors++; return; }
    obs.frames[frame.type] = (obs.frames[frame.type] || 0) + 1;
    const p = frame.payload;
    const saw = (m, via) => {
      if (m.clientId === 'observer') return;
      if (!seen.has(m.clientId)) seen.set(m.clientId, { at, via, connectedAt: m.connectedAt });
    };
    if (frame.type === 'presence_state') {
      obs.lists++;
      const next = new Map();
      for (const m of p.members) {
        next.set(m.connectionId, m.clientId);
        if (!members.has(m.connectionId)) saw(m, 'state');
      }
      for (const [id, clientId] of members) {
        if (!next.has(id) && !left.has(clientId)) left.set(clientId, at);
      }
      members.clear();
      for (const [k, v] of next) members.set(k, v);
      gotList();
    } else if (frame.type === 'presence_join' || frame.type === 'presence_update') {
      if (!members.has(p.connectionId)) saw(p, frame.type === 'presence_join' ? 'join' : 'update');
      members.set(p.connectionId, p.clientId);
    } else if (frame.type === 'presence_leave') {
      members.delete(p.connectionId);
      if (!left.has(p.clientId)) left.set(p.clientId, at);
    } else if (frame.type === 'error') {
      obs.errors++;
      console.error(`# observer got an error frame: ${String(data).slice(0, 300)}`);
    }
    obs.membersMax = Math.max(obs.membersMax, members.size);
    obs.membersLast = members.size;
  });
  observer.on('close', (code) => { obs.closed = code; });
  await new Promise((resolve, reject) => { observer.once('open', resolve); observer.once('error', reject); });
  const pinger = setInterval(() => observer.ping(), 5000);  // idle timeout: the observer sends nothing else
  await Promise.race([listed, sleep(10000).then(() => { throw new Error('the observer got no presence_state in 10 s'); })]);

  const opens = [];
  const closes = [];
  const synced = new Map();  // clientId -> its first sync_state (history read: a member from then on)
  const workerStats = [];     // each worker's figures over the measured time
  const workerProblems = [];  // and what went wrong from start to end
  const workers = [];
  let ramped = 0;
  let allRamped;
  const rampDone = new Promise((resolve) => { allRamped = resolve; });
  const per = Math.ceil(o.connections / o.workers);
  const tag = `c${process.pid.toString(36)}`;
  for (let w = 0, first = 0; w < o.workers && first < o.connections; w++, first += per) {
    const count = Math.min(per, o.connections - first);
    const worker = new Worker(new URL('./churners.mjs', import.meta.url), {
      workerData: { o, tag, first, count, concurrency: Math.max(1, Math.round(o.connectConcurrency / o.workers)) } });
    worker.on('message', (m) => {
      if (m.kind === 'events') {
        opens.push(...m.opens);
        closes.push(...m.closes);
        for (const [id, t] of m.synced) synced.set(id, t);
      }
      else if (m.kind === 'ramped' && ++ramped === workers.length) allRamped();
      else if (m.kind === 'stats') workerStats.push(m.stats);
      else if (m.kind === 'problems') workerProblems.push(m.problems);
    });
    worker.on('error', (e) => { console.error(e); process.exitCode = 1; });
    workers.push(worker);
  }
  const rampStart = now();
  await rampDone;
  const start = now();
  for (const w of workers) w.postMessage({ kind: 'measure' });
  const observerAtStart = { frames: { ...obs.frames }, bytes: obs.bytes };
  console.error(`# ready: ${o.connections} connections on ${o.channel} (ramp ${Math.round(start - rampStart)} ms)`);

  await new Promise((resolve) => {
    const t = o.seconds > 0 ? setTimeout(resolve, o.seconds * 1000) : null;
    for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => { clearTimeout(t); resolve(); });
  });
  const stop = now();
  const all = (list) => Promise.race([sleep(5000), new Promise((resolve) => {
    const check = setInterval(() => { if (list.length === workers.length) { clearInterval(check); resolve(); } }, 20);
  })]);
  for (const w of workers) w.postMessage({ kind: 'stop' });
  await all(workerStats);
  await sleep(o.drain * 1000);
  for (const w of workers) w.postMessage({ kind: 'close' });
  await all(workerProblems);
  clearInterval(pinger);
  observer.close(1000, 'done');

  const { out, failures } = report({ o, start, stop, opens, closes, synced, seen, left, obs, observerAtStart,
    workerStats, workerProblems, workerCount: workers.length });
  console.log(JSON.stringify(out));
  if (o.quick && failures.length > 0) {
    console.error(`# churn: checks failed: ${failures.join('; ')}`);
    process.exitCode = 1;
  }
  setTimeout(() => process.exit(), 100);
}

main().catch((e) => { console.error(e); process.exit(1); });
