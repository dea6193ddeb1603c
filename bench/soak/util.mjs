// Small helpers shared by the soak modules: a seeded random generator,
// waiting for conditions with a deadline, free ports, log lines.
import net from 'node:net';

// mulberry32: tiny, fast and good enough to make schedules reproducible.
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
    // A derived generator, so each client gets its own stream of numbers
    // and adding a client does not shift everyone else's choices.
    fork: (salt) => rng((seed * 31 + hash(String(salt))) >>> 0),
  };
}

function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `cond` (sync or async) until it is truthy; returns its value, or
// throws once `ms` have passed. Used wherever the soak waits for a state
// instead of assuming that a fixed pause was long enough.
export async function waitUntil(cond, ms, what, every = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// Like waitUntil but answers false instead of throwing.
export async function waitFor(cond, ms, every = 100) {
  try {
    return await waitUntil(cond, ms, '', every);
  } catch {
    return false;
  }
}

// A TCP port on 127.0.0.1 that nothing listens on right now.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Exponential backoff with jitter, capped.
export function backoff(attempt, r, base = 100, cap = 2000) {
  const ms = Math.min(cap, base * 2 ** Math.min(attempt, 10));
  return ms / 2 + r.next() * (ms / 2);
}

let t0 = Date.now();
export const startClock = () => { t0 = Date.now(); };
export const elapsed = () => (Date.now() - t0) / 1000;
export const log = (msg) => console.log(`[${elapsed().toFixed(1).padStart(6)}s] ${msg}`);

export function parseDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(s).trim());
  if (!m) throw new Error(`not a duration: ${s} (try 60s, 10m)`);
  const mult = { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] ?? 's'];
  return Math.round(Number(m[1]) * mult);
}

export function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// A frame from the bridge; one that is not JSON comes back as its own type
// (the handlers then ignore it) instead of throwing in an event handler.
export function parseFrame(data) {
  try {
    return JSON.parse(data.toString());
  } catch {
    return { type: 'unparsable', payload: { code: 'unparsable', message: data.toString().slice(0, 100) } };
  }
}
