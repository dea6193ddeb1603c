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
// The JSON line: joinSeenMs (socket open -> the observer saw the member;
// joinSeenVia says how: presence_join, or a new member in a whole list),
// joinSeenFromConnectMs (from `new WebSocket`), joinSeenFromConnectedAtMs
// (from syncd's connectedAt), syncStateMs (open -> the socket's first
// sync_state: the bridge has read its history and made it a member),
// syncStateToConnectedAtMs (from then to syncd's connectedAt: the member's
// way from the bridge to syncd's presence),
// leaveSeenMs (close() -> seen), unseenJoins / unseenLeaves (never seen
// by the end of the drain), what the observer and the churning sockets
// received and sent per second, and checks.
//
// Churning sockets run in --workers worker threads and the observer in the
// main thread, so their work does not delay its timestamps. Times are one
// clock (performance.timeOrigin + performance.now()) in every thread. A
// worker that cannot keep up with what it receives (many subscribers each
// getting whole lists) takes its `open` timestamps late, so joinSeenMs
// understates (negative minimums show it); joinSeenFromConnectedAtMs does
// not depend on the workers.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

function socketUrl(o, clientId, presence) {
  return `${o.url}/sync?channel=${encodeURIComponent(o.channel)}&presence=${presence}&clientId=${encodeURIComponent(clientId)}`;
}

// The frame's type from its first bytes (the bridge writes "type" first),
// without parsing what may be a 200 KB list.
function frameType(data) {
  const head = data.toString('latin1', 0, Math.min(data.length, 40));
  const m = /^\{"type":"([a-z_]+)"/.exec(head);
  return m ? m[1] : 'unknown';
}

function percentiles(values) {
  if (values.length === 0) return { count: 0 };
  const v = Float64Array.from(values).sort();
  const at = (q) => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)];
  const r = (x) => Math.round(x * 10) / 10;
  return { count: v.length, p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(v[v.length - 1]), min: r(v[0]) };
}

// ---- Churning sockets (worker threads) -------------------------------------

function churnThread(d) {
  const o = d.o;
  const period = 1000 / o.rate;
  const slots = [];
  let stopping = false;   // no more reconnects
  let opens = [];         // [clientId, connectStart, opened]
  let closes = [];        // [clientId, closeCalled]
  let synced = [];        // [clientId, first sync_state received]
  const zero = () => ({ opened: 0, connectErrors: 0, unexpectedCloses: 0, closeCodes: {}, errors: {},
    frames: {}, bytesIn: 0, updatesSent: 0, updatesSkipped: 0 });
  let stats = zero();
  // From the first connect to the last close, never reset: what the checks read.
  const problems = { connectErrors: 0, unexpectedCloses: 0, closeCodes: {}, errors: {} };
  const tally = (obj, key) => { obj[key] = (obj[key] || 0) + 1; };

  function schedule(slot, lifeMs) {
    slot.timer = setTimeout(() => {
      if (!slot.ws || slot.ws.readyState !== WebSocket.OPEN) return;
      slot.closing = true;
      closes.push([slot.clientId, now()]);
      slot.ws.close(1000, 'churn');
      slot.ws = null;
      if (!stopping) open(slot, false);
    }, lifeMs);
  }

  function open(slot, first) {
    const clientId = `${d.tag}-${slot.index}-${++slot.gen}`;
    const started = now();
    const ws = new WebSocket(socketUrl(o, clientId, o.subscribe ? 1 : 0), { perMessageDeflate: false });
    slot.ws = ws;
    slot.clientId = clientId;
    slot.closing = false;
    slot.joined = false;
    slot.seq = 0;
    let settled = false;
    let wasOpen = false;
    const opened = new Promise((resolve) => {
      ws.on('open', () => {
        settled = wasOpen = true;
        stats.opened++;
        opens.push([clientId, started, now()]);
        const life = first ? Math.random() * 1.5 * o.lifetime : (0.5 + Math.random()) * o.lifetime;
        schedule(slot, life * 1000);
        resolve(true);
      });
      ws.on('error', () => {
        if (!settled) { settled = true; stats.connectErrors++; problems.connectErrors++; resolve(false); }
      });
    });
    ws.on('message', (data) => {
      const type = frameType(data);
      stats.frames[type] = (stats.frames[type] || 0) + 1;
      stats.bytesIn += data.length;
      if (type === 'sync_state') {
        if (ws === slot.ws && !slot.joined) {
          slot.joined = true;  // a member now: updates are accepted
          synced.push([clientId, now()]);
        }
      } else if (type === 'error') {
        let code = 'unparsed';
        try { code = JSON.parse(data).payload?.code ?? 'no_code'; } catch {}
        tally(stats.errors, code);
        tally(problems.errors, code);
      }
    });
    ws.on('close', (code) => {
      if (ws !== slot.ws) return;  // closed by us: already replaced
      clearTimeout(slot.timer);
      slot.ws = null;
      if (wasOpen) {
        stats.unexpectedCloses++;
        problems.unexpectedCloses++;
        tally(stats.closeCodes, code);
        tally(problems.closeCodes, code);
      }
      if (!stopping) setTimeout(() => { if (!stopping && !slot.ws) open(slot, false); }, 100);
    });
    return opened;
  }

  // State updates: each slot every `period` ms from a random phase.
  const ticker = setInterval(() => {
    const t = now();
    for (const slot of slots) {
      if (t < slot.due) continue;
      slot.due = t - slot.due > period ? t + period : slot.due + period;  // never a burst after a stall
      const ws = slot.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN || !slot.joined || ws.bufferedAmount > 65536) {
        stats.updatesSkipped++;
        continue;
      }
      const x = (slot.index * 37 + slot.seq * 11) % 1920;
      const y = (slot.index * 53 + slot.seq * 7) % 1080;
      ws.send(`{"type":"presence_update","payload":{"state":{"cursor":{"x":${x},"y":${y}},"seq":${++slot.seq}}}}`);
      stats.updatesSent++;
    }
  }, 10);

  const flush = setInterval(() => {
    if (opens.length || closes.length || synced.length) {
      parentPort.postMessage({ kind: 'events', opens, closes, synced });
      opens = [];
      closes = [];
      synced = [];
    }
  }, 200);

  parentPort.on('message', async (m) => {
    if (m.kind === 'measure') {
      stats = zero();
    } else if (m.kind === 'stop') {
      stopping = true;
      parentPort.postMessage({ kind: 'stats', stats });  // the measured time's
    } else if (m.kind === 'close') {
      stopping = true;
      clearInterval(ticker);
      for (const slot of slots) {
        clearTimeout(slot.timer);
        if (slot.ws) { const ws = slot.ws; slot.ws = null; ws.close(1000, 'done'); }
      }
      clearInterval(flush);
      parentPort.postMessage({ kind: 'events', opens, closes, synced });
      parentPort.postMessage({ kind: 'problems', problems });
      setTimeout(() => process.exit(0), 200);
    }
  });

  (async () => {
    for (let i = 0; i < d.count; i++) {
      slots.push({ index: d.first + i, gen: 0, ws: null, timer: null, due: now() + Math.random() * period });
    }
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(d.count, d.concurrency) }, async () => {
      while (next < slots.length) {
        const slot = slots[next++];
        if (!(await open(slot, true))) await sleep(100);
      }
    }));
    parentPort.postMessage({ kind: 'ramped' });
  })();
}

// ---- The observer and the report (main thread) ------------------------------

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
    const worker = new Worker(new URL(import.meta.url), {
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

  // Joins and leaves of the measured time.
  const measured = (stop - start) / 1000;
  const joinMs = [], fromConnectMs = [], fromConnectedAtMs = [], syncStateMs = [], syncStateToConnectedAtMs = [];
  const via = {};
  let unseenJoins = 0;
  const unseenSamples = [];
  const closedAt = new Map(closes.map(([id, t]) => [id, t]));
  for (const [clientId, started, opened] of opens) {
    if (opened < start || opened > stop) continue;
    if (synced.has(clientId)) syncStateMs.push(synced.get(clientId) - opened);
    const s = seen.get(clientId);
    if (!s) {
      unseenJoins++;
      if (unseenSamples.length < 5) unseenSamples.push({ clientId, livedMs: Math.round((closedAt.get(clientId) ?? stop) - opened) });
      continue;
    }
    joinMs.push(s.at - opened);
    fromConnectMs.push(s.at - started);
    if (s.connectedAt) fromConnectedAtMs.push(s.at - s.connectedAt);
    if (s.connectedAt && synced.has(clientId)) syncStateToConnectedAtMs.push(s.connectedAt - synced.get(clientId));
    via[s.via] = (via[s.via] || 0) + 1;
  }
  const leaveMs = [];
  let unseenLeaves = 0;
  for (const [clientId, t] of closes) {
    if (t < start || t > stop) continue;
    const l = left.get(clientId);
    if (l === undefined) { if (seen.has(clientId)) unseenLeaves++; continue; }  // never seen joining: not a leave to see
    leaveMs.push(l - t);
  }
  const sum = (key) => workerStats.reduce((acc, s) => acc + s[key], 0);
  const merge = (key, list = workerStats) => list.reduce((acc, s) => {
    for (const [k, v] of Object.entries(s[key])) acc[k] = (acc[k] || 0) + v;
    return acc;
  }, {});
  const perSec = (x) => Math.round(x / measured);
  const observerFrames = {};
  for (const [k, v] of Object.entries(obs.frames)) observerFrames[k] = v - (observerAtStart.frames[k] || 0);
  const churners = {
    opened: sum('opened'), openedPerSec: perSec(sum('opened')), updatesSentPerSec: perSec(sum('updatesSent')),
    updatesSkipped: sum('updatesSkipped'), framesInPerSec: Object.fromEntries(Object.entries(merge('frames')).map(([k, v]) => [k, perSec(v)])),
    bytesInPerSec: perSec(sum('bytesIn')),
    // from the first connect to the end, not only the measured time:
    errors: merge('errors', workerProblems), unexpectedCloses: workerProblems.reduce((a, p) => a + p.unexpectedCloses, 0),
    closeCodes: merge('closeCodes', workerProblems), connectErrors: workerProblems.reduce((a, p) => a + p.connectErrors, 0),
  };
  const failures = [];
  if (joinMs.length === 0) failures.push('no join was seen');
  if (unseenJoins > 0) failures.push(`${unseenJoins} joins never seen by the observer`);
  if (unseenLeaves > 0) failures.push(`${unseenLeaves} leaves never seen by the observer`);
  if (Object.keys(churners.errors).length > 0) failures.push(`error frames: ${JSON.stringify(churners.errors)}`);
  if (obs.errors > 0) failures.push(`${obs.errors} error frames or unparsable frames at the observer`);
  if (churners.unexpectedCloses > 0) failures.push(`${churners.unexpectedCloses} sockets closed by the bridge`);
  if (churners.connectErrors > 0) failures.push(`${churners.connectErrors} failed connects`);
  if (workerStats.length !== workers.length || workerProblems.length !== workers.length) failures.push('a worker did not report');
  if (obs.closed !== null) failures.push(`the observer was closed (${obs.closed})`);
  const out = {
    channel: o.channel, connections: o.connections, rate: o.rate, lifetimeS: o.lifetime, subscribe: o.subscribe,
    measuredS: Math.round(measured * 10) / 10,
    joinSeenMs: percentiles(joinMs), joinSeenVia: via, unseenJoins, unseenSamples, syncStateMs: percentiles(syncStateMs),
    syncStateToConnectedAtMs: percentiles(syncStateToConnectedAtMs),
    joinSeenFromConnectMs: percentiles(fromConnectMs), joinSeenFromConnectedAtMs: percentiles(fromConnectedAtMs),
    leaveSeenMs: percentiles(leaveMs), unseenLeaves,
    observer: { framesPerSec: Object.fromEntries(Object.entries(observerFrames).map(([k, v]) => [k, perSec(v)])), bytesPerSec: perSec(obs.bytes - observerAtStart.bytes), membersMax: obs.membersMax },
    churners, checks: failures.length === 0 ? 'ok' : failures,
  };
  console.log(JSON.stringify(out));
  if (o.quick && failures.length > 0) {
    console.error(`# churn: checks failed: ${failures.join('; ')}`);
    process.exitCode = 1;
  }
  setTimeout(() => process.exit(), 100);
}

if (isMainThread) {
  main().catch((e) => { console.error(e); process.exit(1); });
} else {
  churnThread(workerData);
}
