// PostgreSQL failing under syncd while clients write and read: the server
// crashes (kill -9) and restarts, and a primary dies and its synchronous
// standby is promoted. Writers (a gRPC Session, a WebSocket through
// sync-bridge) and readers (a gRPC Watch, a /sync WebSocket) run throughout.
// No call may hang, no process may exit, nothing acknowledged may be lost,
// versions stay gap-free, each patch is stored once however often it is
// resent, and every reader sees every version once, in order.
//
// Each test runs its own PostgreSQL cluster (pg_cluster.mjs).
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { promote, startCluster, startReplicatedPair } from './pg_cluster.mjs';
import { startBridge, startSyncd, stopProcess } from './syncd_process.mjs';
import { healthClient, syncClient, unary } from './fault_grpc.mjs';
import { acceptedPush, catchUpReads, healthOf, httpStatus, ms, now, pollUntil, waitFor } from './fault_probes.mjs';
import { SessionWriter, WsWriter } from './fault_writers.mjs';
import { WatchReader, WsReader } from './fault_readers.mjs';
import { ackedSoFar, answersBetween, checkLog, exited, failedReadsSince, hangs, progress } from './fault_checks.mjs';

const cleanups = [];
// Each test's processes, clusters and clients go when it ends.
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

// Writers and readers on `channel` of one syncd, directly and through a bridge.
function startLoad(syncd, bridge, channel) {
  const client = syncClient(`127.0.0.1:${syncd.grpcPort}`);
  const writers = [new SessionWriter(client, channel, 'grpc').start(), new WsWriter(bridge.url, channel, 'ws').start()];
  const readers = [new WatchReader(client, channel).start(), new WsReader(bridge.url, channel).start()];
  const stop = () => {
    for (const x of [...writers, ...readers]) x.stop();
    client.close();
  };
  cleanups.push(stop);
  return { client, writers, readers, stop };
}

test('PostgreSQL killed -9 and restarted under load: unavailable, not hung; then everything resumes, nothing lost', async () => {
  const pg = await startCluster({ name: 'crash' });
  cleanups.push(() => pg.destroy());
  const url = await pg.createDatabase();
  const syncd = await startSyncd(url);
  cleanups.push(() => stopProcess(syncd, 'syncd'));
  const bridge = await startBridge(syncd.grpcPort);
  cleanups.push(() => stopProcess(bridge, 'sync-bridge'));
  const health = healthClient(`127.0.0.1:${syncd.grpcPort}`);
  cleanups.push(() => health.close());
  const readyz = () => httpStatus(`http://127.0.0.1:${syncd.httpPort}/readyz`);
  const problems = [];

  if (await readyz() !== 200) problems.push(`/readyz answered ${await readyz()} before any fault`);
  const channel = 'crash';
  const load = startLoad(syncd, bridge, channel);
  await progress(load.writers, 25, 30000, 'before the crash');

  // The crash: kill -9 of the postmaster; its backends follow it.
  const ackedBefore = ackedSoFar(load.writers);
  await pg.kill9();
  const down = now();
  // Down for 3 s at least, and until syncd has said so (or 15 s).
  const seen = {};
  while (now() - down < 3000 || (!(seen.readyz && seen.health && seen.sync) && now() - down < 15000)) {
    const [r, h, s] = await Promise.all([readyz(), healthOf(health, ''), healthOf(health, 'sync.v1.Sync')]);
    if (r === 503) seen.readyz ??= now() - down;
    if (h === 'NOT_SERVING') seen.health ??= now() - down;
    if (s === 'NOT_SERVING') seen.sync ??= now() - down;
    seen.last = { readyz: r, health: h, sync: s };
    await sleep(100);
  }
  problems.push(...exited([syncd, bridge]));
  const restart = now();
  console.log(`# while PostgreSQL was down: /readyz 503 after ${seen.readyz ? ms(seen.readyz) : 'never'}, health NOT_SERVING after ` +
    `${seen.health ? ms(seen.health) : 'never'} ("") / ${seen.sync ? ms(seen.sync) : 'never'} (sync.v1.Sync); last ${JSON.stringify(seen.last)}`);
  if (!seen.readyz) problems.push(`/readyz never answered 503 while PostgreSQL was down (last: ${seen.last.readyz})`);
  if (!seen.health || !seen.sync) problems.push(`gRPC health never said NOT_SERVING while PostgreSQL was down (last: ${JSON.stringify(seen.last)})`);

  await pg.start();
  const up = now();  // PostgreSQL accepts connections again

  // The first reads after the restart (enough to reach each reader thread,
  // whose connection died with the server): they must succeed.
  const firstReads = Promise.allSettled([0, 1, 2].map(() =>
    unary(load.client, 'GetChanges', { channel, fromVersion: 0, limit: 10 }, 10000)));
  const [reads, catchUp, ready, accepted] = await Promise.all([
    firstReads,
    catchUpReads(load.client, channel).catch((e) => e),
    pollUntil(readyz, (s) => s === 200, 30000, '/readyz 200 after the restart', 50).catch((e) => e),
    acceptedPush(load.client, 'probe', 30000, 50).catch((e) => e),
  ]);
  for (const r of reads) {
    if (r.status === 'rejected') problems.push(`GetChanges right after the restart failed: ${r.reason.code} ${r.reason.details}`);
  }
  if (catchUp instanceof Error) problems.push(`a catch-up read right after the restart: ${catchUp.message}`);
  if (ready instanceof Error) problems.push(ready.message);
  if (accepted instanceof Error) problems.push(accepted.message);
  const toReady = ready instanceof Error ? null : ready.at - up;
  const toAccept = accepted instanceof Error ? null : accepted - up;
  console.log(`# PostgreSQL down ${ms(restart - down)}, then accepting connections after ${ms(up - restart)} (crash recovery); ` +
    `from then: /readyz 200 in ${toReady === null ? 'never' : ms(toReady)}, first accepted patch in ${toAccept === null ? 'never' : ms(toAccept)}`);
  if (toAccept !== null && toAccept > 5000) problems.push(`the first patch was accepted ${ms(toAccept)} after PostgreSQL was back (bound 5 s)`);

  // During the outage: answers, not silence, and never `accepted`. It ends
  // when the restart begins: PostgreSQL accepts connections (and commits)
  // before pg.start() has returned and `up` is taken.
  const outage = answersBetween(load.writers, down, restart);
  const acceptedInOutage = outage.attempts.filter((a) => a.outcome === 'accepted');
  if (acceptedInOutage.length > 0) problems.push(`accepted while PostgreSQL was down: ${JSON.stringify(acceptedInOutage.slice(0, 3))}`);
  const told = outage.events.length;
  console.log(`# writers told unavailable ${told} times while PostgreSQL was down: ${[...new Set(outage.events.map((e) => `${e.writer} ${e.what} ${e.code ?? ''}`))].join('; ')}`);
  if (told === 0) problems.push('no writer was told the database is unavailable while it was down');
  for (const e of outage.events) {
    const ok = e.what === 'unavailable ack' || (e.writer === 'grpc' && e.code === 'UNAVAILABLE') ||
      (e.writer === 'ws' && /^(1013|unavailable)/.test(e.code));
    if (!ok) problems.push(`${e.writer}: ${e.what} ${e.code} while PostgreSQL was down (expected unavailable)`);
  }

  // Then the load goes on, every unsettled patch is resent until stored.
  await progress(load.writers, 20, 30000, 'after the restart').catch((e) => problems.push(e.message));
  for (const w of load.writers) await w.settle(30000).catch((e) => problems.push(e.message));
  problems.push(...failedReadsSince(load.readers, up));
  problems.push(...hangs(load.writers));
  const check = await checkLog(url, channel, { writers: load.writers, readers: load.readers, ackedBefore });
  problems.push(...check.problems);
  console.log(`# ${check.head} versions stored; readers reconnected ${load.readers.map((r) => `${r.name} ${r.reconnects}x`).join(', ')}`);
  load.stop();

  await pollUntil(readyz, (s) => s === 200, 10000, '/readyz 200 at the end').catch((e) => problems.push(e.message));
  await pollUntil(() => healthOf(health, 'sync.v1.Sync'), (s) => s === 'SERVING', 10000, 'health SERVING at the end')
    .catch((e) => problems.push(e.message));
  problems.push(...exited([syncd, bridge]));
  assert.deepEqual(problems, [], `syncd's log:\n${syncd.output().slice(-4000)}\nsync-bridge's log:\n${bridge.output().slice(-3000)}`);
});

test('failover: the primary dies, its synchronous standby is promoted, syncd goes on with it and nothing acked is lost', async () => {
  const pair = await startReplicatedPair({ database: 'sync' });
  cleanups.push(() => pair.primary.destroy(), () => pair.standby.destroy());
  const syncd = await startSyncd(pair.multiUrl);
  cleanups.push(() => stopProcess(syncd, 'syncd'));
  const bridge = await startBridge(syncd.grpcPort);
  cleanups.push(() => stopProcess(bridge, 'sync-bridge'));
  const problems = [];

  const channel = 'failover';
  const load = startLoad(syncd, bridge, channel);
  await progress(load.writers, 25, 30000, 'before the failover');

  const ackedBefore = ackedSoFar(load.writers);
  await pair.primary.kill9();
  const killed = now();
  await sleep(1000);  // the time it takes to notice, in real life
  // The standby takes writes before `pg_ctl promote -w` returns (it polls),
  // so "no primary" ends when the promotion starts.
  const promoting = now();
  await promote(pair.standby);
  const promoted = now();
  const accepted = await acceptedPush(load.client, 'probe', 30000, 50).catch((e) => e);
  if (accepted instanceof Error) problems.push(accepted.message);
  const firstWriterAck = () => Math.min(...load.writers.flatMap((w) => [...w.patches.values()]
    .filter((p) => p.final?.status === 'accepted' && p.final.at > promoted).map((p) => p.final.at)));
  await waitFor(() => Number.isFinite(firstWriterAck()), 30000, 'a writer\'s patch accepted after the promotion')
    .catch((e) => problems.push(e.message));
  console.log(`# primary killed, standby promoted ${ms(promoted - killed)} later; from the promotion: first accepted probe in ` +
    `${accepted instanceof Error ? 'never' : ms(accepted - promoted)}, first accepted writer patch in ${ms(firstWriterAck() - promoted)}`);
  if (!(accepted instanceof Error) && accepted - promoted > 15000) problems.push(`first accepted patch ${ms(accepted - promoted)} after the promotion`);

  const outage = answersBetween(load.writers, killed, promoting);
  const acceptedInOutage = outage.attempts.filter((a) => a.outcome === 'accepted');
  if (acceptedInOutage.length > 0) problems.push(`accepted with no primary: ${JSON.stringify(acceptedInOutage.slice(0, 3))}`);

  await progress(load.writers, 20, 30000, 'after the promotion').catch((e) => problems.push(e.message));
  for (const w of load.writers) await w.settle(30000).catch((e) => problems.push(e.message));
  problems.push(...hangs(load.writers));
  // Checked on the new primary.
  const check = await checkLog(pair.standby.url('sync'), channel, { writers: load.writers, readers: load.readers, ackedBefore });
  problems.push(...check.problems);
  console.log(`# ${check.head} versions on the new primary; readers reconnected ${load.readers.map((r) => `${r.name} ${r.reconnects}x`).join(', ')}`);
  load.stop();
  problems.push(...exited([syncd, bridge]));
  assert.deepEqual(problems, [], `syncd's log:\n${syncd.output().slice(-4000)}\nsync-bridge's log:\n${bridge.output().slice(-3000)}`);
});
