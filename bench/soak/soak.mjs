#!/usr/bin/env node
// A soak run with fault injection and a history checker for syncd and
// sync-bridge. It starts its own PostgreSQL, two syncd on that database and
// a bridge in front of each, runs writers and readers over every protocol
// (gRPC Session/Push/Watch, WebSocket /sync and /crdt) on a few channels,
// kills things on a seeded schedule, then checks what every client saw
// against the database. See --help.
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { check, snapshot } from './checker.mjs';
import { PgCluster, runAsync, Service } from './cluster.mjs';
import { Faults, schedule } from './faults.mjs';
import { closeClients } from './grpc.mjs';
import { CrdtUpdates, GraphPatches, OpaquePatches, Record } from './patches.mjs';
import { CrdtReader, SessionReader, SyncWsReader, WatchReader } from './readers.mjs';
import { faultRows, firstAckAfter, printTable, verdictLine, writeReport } from './report.mjs';
import { elapsed, freePort, log, parseDuration, rng, startClock, waitFor } from './util.mjs';
import { CrdtWriter, PushWriter, SessionWriter, SyncWsWriter } from './writers.mjs';

const HELP = `usage: node soak.mjs [--duration 60s] [--fault-every 8s] [--seed N] [--out report.json]

Needs SYNCD_BIN and SYNC_BRIDGE_BIN (paths to syncd and sync-bridge), psql
and PostgreSQL 15 in /usr/lib/postgresql/15/bin.

  --duration D     how long faults and traffic run (e.g. 60s, 10m)    [$SOAK_DURATION, 60s]
  --fault-every D  mean time between faults                           [$SOAK_FAULT_EVERY, 8s]
  --seed N         fixes the fault schedule and the clients' choices  [$SOAK_SEED, random]
  --rate N         patches/s per writer                               [$SOAK_RATE, 20]
  --channels N     channels: N-1 graph channels and one CRDT channel  [$SOAK_CHANNELS, 3]
  --out FILE       write the JSON report there                        [$SOAK_OUT]
  --keep-logs      keep the server logs even when the run passes
  -h, --help       this text

Exit status: 0 when every check passes, 1 when one fails, 2 when the run
could not be set up.`;

const usage = (msg) => {
  console.error(`soak: ${msg}\n\n${HELP}`);
  process.exit(2);
};
let opt;
try {
  ({ values: opt } = parseArgs({ options: {
    duration: { type: 'string', default: process.env.SOAK_DURATION ?? '60s' },
    'fault-every': { type: 'string', default: process.env.SOAK_FAULT_EVERY ?? '8s' },
    seed: { type: 'string', default: process.env.SOAK_SEED },
    rate: { type: 'string', default: process.env.SOAK_RATE ?? '20' },
    channels: { type: 'string', default: process.env.SOAK_CHANNELS ?? '3' },
    out: { type: 'string', default: process.env.SOAK_OUT },
    'keep-logs': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  } }));
} catch (e) {
  usage(e.message);
}
if (opt.help) {
  console.log(HELP);
  process.exit(0);
}
let durationMs;
let faultEveryMs;
try {
  durationMs = parseDuration(opt.duration);
  faultEveryMs = parseDuration(opt['fault-every']);
  for (const k of ['seed', 'rate', 'channels']) {
    if (opt[k] !== undefined && !(Number(opt[k]) >= 0)) throw new Error(`--${k} wants a number, not ${opt[k]}`);
  }
  if (faultEveryMs < 500) throw new Error('--fault-every is at least 500ms');
} catch (e) {
  usage(e.message);
}
const seed = Number(opt.seed ?? Math.floor(Math.random() * 1e9));
const rate = Math.max(1, Number(opt.rate));
const nChannels = Math.max(2, Number(opt.channels));
for (const name of ['SYNCD_BIN', 'SYNC_BRIDGE_BIN']) {
  if (!process.env[name]) {
    const example = name === 'SYNCD_BIN' ? 'build/service/syncd' : 'build/bridge/sync-bridge';
    console.error(`soak: ${name} is not set: point it at the binary to test, e.g. ${name}=$PWD/${example}`);
    process.exit(2);
  }
}

// ---- Set-up and clean-up ----------------------------------------------------

const logDir = mkdtempSync(path.join(os.tmpdir(), 'soak-logs-'));
let pg = null;
const services = [];
let keepLogs = opt['keep-logs'];
// Synchronous, so it also runs on process.exit from a signal or a crash.
process.on('exit', () => {
  for (const s of services) s.killSync();
  if (pg) {
    if (keepLogs) try { copyFileSync(path.join(pg.dir, 'server.log'), path.join(logDir, 'postgresql.log')); } catch {}
    pg.removeSync();
  }
  if (!keepLogs) rmSync(logDir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { log(`${sig}: stopping`); process.exit(130); });
const crashed = (e) => {
  console.error(`soak: could not run: ${e?.stack ?? e}`);
  keepLogs = true;
  console.error(`server logs kept in ${logDir}`);
  process.exit(2);
};
process.on('uncaughtException', crashed);
process.on('unhandledRejection', crashed);

async function setUp() {
  // The binaries may be being rebuilt: give them a minute to reappear.
  for (const name of ['SYNCD_BIN', 'SYNC_BRIDGE_BIN']) {
    if (!await waitFor(() => existsSync(process.env[name]), 60000, 500)) throw new Error(`${name}=${process.env[name]} does not exist`);
  }
  pg = new PgCluster(await freePort());
  pg.init();
  await pg.start();
  await pg.createDatabase();
  const m = await runAsync(process.env.SYNCD_BIN, ['migrate', 'up', '--database-url', pg.url]);
  if (!m.ok) throw new Error(`syncd migrate up failed:\n${m.out}`);
  log(`PostgreSQL on 127.0.0.1:${pg.port} (${pg.dir}), migrated; logs in ${logDir}`);
  const syncds = [0, 1].map((i) => new Service({
    name: `syncd-${i}`, bin: process.env.SYNCD_BIN, logDir,
    argsFor: (port) => ['serve', '--database-url', pg.url, '--grpc-listen', `127.0.0.1:${port}`,
      '--http-listen', '127.0.0.1:0', '--uncapped-address', '127.0.0.1'],
    readyRe: /serving gRPC on port (\d+)[^\n]*?HTTP[^\n]*? on port (\d+)/,
  }));
  services.push(...syncds);  // from here on the exit handler kills them
  for (const s of syncds) await s.start();
  const bridges = syncds.map((s, i) => new Service({
    name: `bridge-${i}`, bin: process.env.SYNC_BRIDGE_BIN, logDir,
    argsFor: (port) => ['--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${s.port}`],
    readyRe: /listening on port (\d+)/,
  }));
  services.push(...bridges);
  for (const b of bridges) await b.start();
  log(`syncd on ${syncds.map((s) => s.port).join(', ')}; bridges on ${bridges.map((b) => b.port).join(', ')}`);
  return { syncds, bridges };
}

// ---- Clients ----------------------------------------------------------------

function makeClients(syncds, bridges, rec) {
  const grpcTargets = syncds.map((s) => `127.0.0.1:${s.port}`);
  const wsTargets = bridges.map((b) => `ws://127.0.0.1:${b.port}`);
  const root = rng(seed);
  const writers = [];
  const readers = [];
  const channels = [];
  const invalidShare = 0.03;
  const w = (Cls, name, channel, targets, gen, window = 16) => writers.push(new Cls({ name, kind: Cls.name, channel, targets,
    gen, rec, r: root.fork(name), rate, window }));
  const rd = (Cls, name, channel, targets) => readers.push(new Cls({ name, kind: Cls.name, channel, targets, rec, r: root.fork(name) }));
  for (let c = 0; c < nChannels - 1; c++) {
    const ch = `graph-${c}`;
    channels.push(ch);
    w(SessionWriter, `g${c}-session`, ch, grpcTargets, new GraphPatches(`g${c}-session`, root.fork(`g${c}s`), invalidShare));
    w(PushWriter, `g${c}-push`, ch, grpcTargets, new GraphPatches(`g${c}-push`, root.fork(`g${c}p`), invalidShare));
    w(SyncWsWriter, `g${c}-ws`, ch, wsTargets, new GraphPatches(`g${c}-ws`, root.fork(`g${c}w`), invalidShare));
    rd(WatchReader, `g${c}-watch`, ch, grpcTargets);
    rd(SessionReader, `g${c}-session-r`, ch, grpcTargets);
    rd(SyncWsReader, `g${c}-ws-r`, ch, wsTargets);
  }
  // Only opaque patches here, so a /crdt reader sees every version.
  const ch = 'crdt-0';
  channels.push(ch);
  for (const x of ['a', 'b']) w(CrdtWriter, `crdt-${x}`, ch, wsTargets, new CrdtUpdates(`site-${x}-${seed}`), 1);
  w(PushWriter, 'crdt-push', ch, grpcTargets, new OpaquePatches('crdt-push', root.fork('cp'), invalidShare));
  rd(CrdtReader, 'crdt-r', ch, wsTargets);
  rd(SyncWsReader, 'crdt-ws-r', ch, wsTargets);
  rd(WatchReader, 'crdt-watch', ch, grpcTargets);
  return { writers, readers, channels };
}

// ---- The run ----------------------------------------------------------------

async function heads() {
  const r = await pg.psql('SELECT name, head FROM channels');
  if (!r.ok) return null;
  return new Map(r.stdout.trim().split('\n').filter(Boolean).map((l) => { const [n, h] = l.split('\t'); return [n, Number(h)]; }));
}

async function main() {
  const { syncds, bridges } = await setUp();
  const rec = new Record();
  const { writers, readers, channels } = makeClients(syncds, bridges, rec);
  const plan = schedule(seed, durationMs, faultEveryMs);
  log(`seed ${seed}: ${durationMs / 1000}s, ${plan.length} faults planned, ${writers.length} writers and ${readers.length} readers on ${channels.join(', ')}`);

  startClock();
  const t0 = Date.now();
  log('traffic starts (times from here on are since this line)');
  for (const c of [...readers, ...writers]) c.start();
  const status = setInterval(() => {
    const c = rec.counts;
    const pending = writers.reduce((n, w) => n + w.pending.size, 0);
    log(`status: accepted ${c.accepted} ignored ${c.ignored} crdt-acked ${c.acked} rejected ${c.rejected} retryable ${c.retryable}`
      + ` | reads ${c.reads} | pending ${pending} | writers up ${writers.filter((w) => w.connected).length}/${writers.length}`
      + ` readers up ${readers.filter((r) => r.connected).length}/${readers.length}`);
  }, 10000);

  const faults = new Faults({ pg, syncds, bridges, plan, t0 });
  const running = faults.run();
  await waitFor(() => Date.now() - t0 >= durationMs, durationMs + 1000, 200);
  faults.stop();
  await running;

  // Wind down: no more faults or new patches; every pending patch settles,
  // then every reader reaches the head.
  log('winding down: waiting for the services, the writers\' pending patches, then the readers');
  const healthy = await faults.waitReady(60000);
  if (healthy === null) log('!! not every syncd and bridge is ready after 60 s');
  const windDownAt = Date.now();
  for (const w of writers) w.generating = false;
  const settled = await waitFor(() => writers.every((w) => w.pending.size === 0), 60000, 200);
  if (!settled) log(`!! writers still pending after 60 s: ${writers.filter((w) => w.pending.size).map((w) => `${w.name}=${w.pending.size}`).join(' ')}`);
  const caughtUp = await waitFor(async () => {
    const h = await heads();
    return h && readers.every((r) => r.last === (h.get(r.channel) ?? 0));
  }, 60000, 250);
  if (!caughtUp) log(`!! readers not at the head after 60 s: ${readers.map((r) => `${r.name}=${r.last}`).join(' ')}`);
  clearInterval(status);
  for (const c of [...writers, ...readers]) c.close();
  closeClients();

  const snap = await snapshot(pg);
  const faultBefore = (t) => {
    const f = [...faults.done].reverse().find((x) => x.at <= t);
    return f ? `${((t - f.at) / 1000).toFixed(1)} s after ${f.kind}${f.target === null ? '' : ` #${f.target}`} at ${((f.at - t0) / 1000).toFixed(1)} s` : 'before any fault';
  };
  const violations = check({ snap, rec, readers, writers, channels, faultBefore });
  const crashes = services.flatMap((s) => s.crashes.map((c) => `${s.name} exited by itself at ${((c.at - t0) / 1000).toFixed(1)} s (${faultBefore(c.at)}), code ${c.code ?? c.signal}`));

  const c = rec.counts;
  const totals = {
    'patches sent': rec.sent.size, accepted: c.accepted, ignored: c.ignored, 'crdt acked': c.acked,
    rejected: c.rejected, 'retryable rejections': c.retryable, reads: c.reads,
    'writer reconnects': writers.reduce((n, w) => n + w.stats.disconnects, 0),
    'reader reconnects': readers.reduce((n, r) => n + r.stats.disconnects, 0),
    'unplanned exits': crashes.length,
  };
  const rows = faultRows(faults.done, rec.acks, t0, windDownAt);
  const headsNow = channels.map((ch) => `${ch}@${snap.heads.get(ch) ?? 0}`).join(' ');
  const summary = `${opt.duration} seed ${seed}: ${faults.done.length} faults, ${c.accepted + c.ignored + c.acked} acks checked, `
    + `${readers.length} readers gap-free to the head (${headsNow})`;
  console.log('');
  console.log(verdictLine(violations, summary));
  for (const v of violations.slice(0, 20)) console.log(`  (${v.check}) ${v.what}`);
  if (violations.length > 20) console.log(`  ... ${violations.length - 20} more`);
  for (const x of crashes) console.log(`  note: ${x}`);
  printTable(rows, totals);
  if (violations.length || crashes.length) keepLogs = true;
  if (keepLogs) {
    // Everything the clients saw, to look into a violation afterwards.
    writeReport(path.join(logDir, 'history.json'), {
      acks: rec.acks,
      readers: readers.map((r) => ({ name: r.name, channel: r.channel, conns: r.conns, versions: r.versions, pids: r.pids, times: r.times })),
    });
    console.log(`server logs and the clients' history (history.json) kept in ${logDir}`);
  }
  if (opt.out) {
    writeReport(opt.out, {
      verdict: violations.length ? 'FAIL' : 'PASS', seed, duration: opt.duration, faultEvery: opt['fault-every'], rate,
      elapsedS: elapsed(), channels, heads: Object.fromEntries(snap.heads), totals, violations, crashes,
      faults: faults.done.map((f) => ({ ...f, atS: (f.at - t0) / 1000, firstAckMs: firstAckAfter(rec.acks, f.at) })),
      faultSummary: rows,
      writers: writers.map((w) => w.summary()), readers: readers.map((r) => r.summary()),
      logs: keepLogs ? logDir : null,
    });
  }
  return violations.length ? 1 : 0;
}

main().then((code) => process.exit(code), crashed);
