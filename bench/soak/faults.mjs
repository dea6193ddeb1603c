// Faults on a schedule fixed by the seed: kill -9 of a syncd or a bridge
// (restarted on the same port), a PostgreSQL crash and restart (crash
// recovery), and PostgreSQL terminating syncd's connections. For each one:
// when it was injected and how long until both syncd report ready again.
import { log, rng, sleep } from './util.mjs';

export const KINDS = ['syncd-kill', 'bridge-kill', 'pg-restart', 'pg-terminate'];

// Every kind once per round, in an order shuffled per round, so even a
// short run meets each kind; the gaps vary by +-25% around `everyMs`.
export function schedule(seed, durationMs, everyMs) {
  const r = rng(seed).fork('faults');
  const out = [];
  let round = [];
  for (let at = everyMs * (0.75 + 0.5 * r.next()); at < durationMs; at += everyMs * (0.75 + 0.5 * r.next())) {
    if (!round.length) {
      round = [...KINDS];
      for (let i = round.length - 1; i > 0; i--) {
        const j = r.int(i + 1);
        [round[i], round[j]] = [round[j], round[i]];
      }
    }
    const kind = round.pop();
    out.push({ at: Math.round(at), kind, target: kind.endsWith('kill') ? r.int(2) : null });
  }
  return out;
}

// Readiness of one syncd: GET /readyz (200 when its database is reachable).
export async function syncdReady(svc) {
  if (!svc.up || !svc.match) return false;
  try {
    const res = await fetch(`http://127.0.0.1:${svc.match[2]}/readyz`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

export async function bridgeReady(svc) {
  if (!svc.up) return false;
  try {
    return (await fetch(`http://127.0.0.1:${svc.port}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
  } catch {
    return false;
  }
}

export class Faults {
  constructor({ pg, syncds, bridges, plan, t0 }) {
    Object.assign(this, { pg, syncds, bridges, plan, t0 });
    this.done = [];      // injected faults with their timings
    this.stopping = false;
  }

  allSyncdReady = async () => (await Promise.all(this.syncds.map(syncdReady))).every(Boolean);
  allBridgesReady = async () => (await Promise.all(this.bridges.map(bridgeReady))).every(Boolean);

  async run() {
    for (const f of this.plan) {
      while (!this.stopping && Date.now() - this.t0 < f.at) await sleep(Math.min(200, f.at - (Date.now() - this.t0)));
      if (this.stopping) return;
      // One fault at a time: the previous one has healed (or 60 s passed).
      const healthy = await this.waitReady(60000);
      if (!healthy) log('!! the previous fault has not healed after 60 s; injecting the next one anyway');
      if (this.stopping) return;
      await this.inject(f);
    }
  }

  stop() { this.stopping = true; }

  // Every syncd and bridge ready: the time it took, or null after `ms`.
  async waitReady(ms) {
    return (await this.timeToReady(ms)).all;
  }

  // Polls every 50 ms until both syncd are ready and then the bridges too;
  // answers {syncd, all}: ms until each held (null: not within `ms`).
  async timeToReady(ms) {
    const start = Date.now();
    const out = { syncd: null, all: null };
    while (Date.now() - start < ms) {
      if (out.syncd === null && await this.allSyncdReady()) out.syncd = Date.now() - start;
      if (out.syncd !== null && await this.allBridgesReady()) {
        out.all = Date.now() - start;
        return out;
      }
      await sleep(50);
    }
    return out;
  }

  async inject(f) {
    const rec = { kind: f.kind, target: f.target, planned: f.at, at: Date.now(), detail: '' };
    const label = f.target === null ? f.kind : `${f.kind} #${f.target}`;
    log(`fault: ${label}`);
    try {
      // The component comes back first (restarted, or PostgreSQL started
      // again); only then does "ready" mean recovered rather than "not yet
      // noticed".
      switch (f.kind) {
        case 'syncd-kill': await this.syncds[f.target].kill9AndRestart(); break;
        case 'bridge-kill': await this.bridges[f.target].kill9AndRestart(); break;
        case 'pg-restart':
          await this.pg.kill9();
          await sleep(2000);  // the outage itself, not a wait for anything
          {
            const t = Date.now();
            const attempts = await this.pg.start();
            rec.detail = `PostgreSQL started (crash recovery) in ${Date.now() - t} ms, ${attempts} attempt(s)`;
          }
          break;
        case 'pg-terminate': {
          const r = await this.pg.psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = '${this.pg.database}' AND pid <> pg_backend_pid()`);
          rec.detail = r.ok ? `${r.stdout.trim()} connection(s) terminated` : `failed: ${r.out.trim()}`;
          break;
        }
        default: throw new Error(`unknown fault ${f.kind}`);
      }
    } catch (e) {
      rec.error = e.message;
      log(`!! fault ${label} failed: ${e.message}`);
    }
    rec.backAt = Date.now();
    const t = await this.timeToReady(60000);
    rec.readyMs = t.syncd === null ? null : rec.backAt - rec.at + t.syncd;
    rec.allReadyMs = t.all === null ? null : rec.backAt - rec.at + t.all;
    rec.readyAfterHealMs = t.syncd;  // from the restart (PostgreSQL accepting again, a process started)
    this.done.push(rec);
    log(`fault: ${label} healed: syncd ready after ${rec.readyMs ?? 'never'} ms, bridges too after ${rec.allReadyMs ?? 'never'} ms`
      + ` (${rec.readyAfterHealMs ?? 'never'} ms after the restart)${rec.detail ? `; ${rec.detail}` : ''}`);
  }
}
