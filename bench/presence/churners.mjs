// The churning sockets of churn.mjs: the body of each of its worker threads
// (loaded with workerData { o, tag, first, count, concurrency }), and the
// clock and URL that the observer in the main thread shares with them.
//
// Each slot is one member that keeps coming back: a socket lives its
// lifetime, closes with 1000 and a new one under a new clientId takes the
// slot at once. What the main thread needs to time joins and leaves goes to
// it as 'events' batches (opens, closes, first sync_states); counters go as
// 'stats' (the measured time's) and 'problems' (the whole run's, for the
// checks).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

// One clock in every thread: the workers' open and close times are
// subtracted from the observer's receive times.
export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function socketUrl(o, clientId, presence) {
  return `${o.url}/sync?channel=${encodeURIComponent(o.channel)}&presence=${presence}&clientId=${encodeURIComponent(clientId)}`;
}

// The frame's type from its first bytes (the bridge writes "type" first),
// without parsing what may be a 200 KB list.
function frameType(data) {
  const head = data.toString('latin1', 0, Math.min(data.length, 40));
  const m = /^\{"type":"([a-z_]+)"/.exec(head);
  return m ? m[1] : 'unknown';
}

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

// The main thread imports this module for now(), sleep() and socketUrl();
// only a worker started on it churns.
if (!isMainThread) churnThread(workerData);
