// The network misbehaving around syncd, through fault proxies
// (fault_proxy.mjs): between syncd and PostgreSQL (latency, a database gone
// silent, connections reset) and between sync-bridge and syncd (syncd gone
// silent). Writers and readers (fault_writers.mjs, fault_readers.mjs) run
// throughout: nothing may hang past a bound, nothing acknowledged may be
// lost, versions stay gap-free, and readers see every version once, in order.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaultProxy } from './fault_proxy.mjs';
import { createDatabase, startBridge, startSyncd, stopProcess } from './syncd_process.mjs';
import { healthClient, syncClient, unary } from './fault_grpc.mjs';
import { acceptedPush, healthOf, httpStatus, ms, now, pollUntil, waitFor } from './fault_probes.mjs';
import { SessionWriter, WsWriter } from './fault_writers.mjs';
import { WatchReader, WsReader } from './fault_readers.mjs';
import { ackLatency, ackedSoFar, checkLog, exited, firstRefusal, hangs, progress } from './fault_checks.mjs';

const cleanups = [];
// Each test's processes, clusters and clients go when it ends.
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

// The same database URL, through `proxy`.
const viaProxy = (url, proxy) => {
  const u = new URL(url);
  u.host = proxy.hostPort();
  return u.toString();
};

// A fresh database, and syncd reaching it through a fault proxy.
async function syncdBehindProxy(args = []) {
  const db = createDatabase();
  cleanups.push(() => db.drop());
  const proxy = await FaultProxy.start(Number(new URL(db.url).port));
  cleanups.push(() => proxy.close());
  const syncd = await startSyncd(viaProxy(db.url, proxy), args);
  cleanups.push(() => stopProcess(syncd, 'syncd'));
  return { db, proxy, syncd };
}

// Stops writers and readers and closes clients, at the latest when the test ends.
function track(...things) {
  const stop = () => {
    for (const t of things) {
      if (t.stop) t.stop();
      else t.close();
    }
  };
  cleanups.push(stop);
  return stop;
}

const report = (problems, ...procs) => assert.deepEqual(problems, [],
  procs.map((p) => `${p.name}'s log:\n${p.output().slice(-3000)}`).join('\n'));

test('50 ms each way to PostgreSQL: every patch is accepted, slower, and nothing is lost', async () => {
  const { db, proxy, syncd } = await syncdBehindProxy();
  proxy.delay(50);
  const client = syncClient(`127.0.0.1:${syncd.grpcPort}`);
  const writer = new SessionWriter(client, 'slow', 'grpc', { window: 8 }).start();
  const reader = new WatchReader(client, 'slow').start();
  const stop = track(writer, reader, client);
  const problems = [];

  const start = now();
  await progress([writer], 60, 60000, 'with 50 ms each way');
  await writer.settle(30000);
  const lat = ackLatency([writer]);
  console.log(`# 50 ms each way: ${writer.accepted()} patches in ${ms(now() - start)}, ack latency median ${ms(lat.median)}, max ${ms(lat.max)}`);
  // A commit takes at least one round trip (100 ms) through the proxy.
  if (!(lat.median >= 100)) problems.push(`median ack latency ${ms(lat.median)}: is the delay in the path?`);
  if (writer.events.length > 0) problems.push(`refusals under mere latency: ${JSON.stringify(writer.events.slice(0, 3))}`);
  problems.push(...hangs([writer]));
  problems.push(...(await checkLog(db.url, 'slow', { writers: [writer], readers: [reader] })).problems);
  stop();
  proxy.heal();
  problems.push(...exited([syncd]));
  report(problems, { name: 'syncd', ...syncd });
});

test('PostgreSQL goes silent (--db-dead-after 3): refusals and /readyz 503 within 10 s, not a hang; back once it answers', async () => {
  const { db, proxy, syncd } = await syncdBehindProxy(['--db-dead-after', '3']);
  const bridge = await startBridge(syncd.grpcPort);
  cleanups.push(() => stopProcess(bridge, 'sync-bridge'));
  const client = syncClient(`127.0.0.1:${syncd.grpcPort}`);
  const health = healthClient(`127.0.0.1:${syncd.grpcPort}`);
  const channel = 'silent-db';
  const writers = [new SessionWriter(client, channel, 'grpc').start(), new WsWriter(bridge.url, channel, 'ws').start()];
  const readers = [new WatchReader(client, channel).start(), new WsReader(bridge.url, channel).start()];
  const stop = track(...writers, ...readers, client, health);
  const readyz = () => httpStatus(`http://127.0.0.1:${syncd.httpPort}/readyz`);
  const problems = [];

  await progress(writers, 20, 30000, 'before the silence');
  const ackedBefore = ackedSoFar(writers);
  proxy.blackhole();
  const hole = now();
  // Silent until syncd has said so both ways and refused patches for a
  // second, or 20 s.
  const seen = {};
  while (now() - hole < 20000) {
    const [r, h] = await Promise.all([readyz(), healthOf(health, 'sync.v1.Sync')]);
    if (r === 503) seen.readyz ??= now() - hole;
    if (h === 'NOT_SERVING') seen.health ??= now() - hole;
    const refused = firstRefusal(writers, hole);
    if (refused !== null) seen.refused ??= refused - hole;
    seen.last = { readyz: r, health: h };
    if (seen.readyz && seen.health && seen.refused && now() - hole > seen.refused + 1000) break;
    await sleep(100);
  }
  const healed = now();
  proxy.heal();
  console.log(`# PostgreSQL silent for ${ms(healed - hole)}: first patch refused after ${seen.refused ? ms(seen.refused) : 'never'}, ` +
    `/readyz 503 after ${seen.readyz ? ms(seen.readyz) : 'never'}, health NOT_SERVING after ${seen.health ? ms(seen.health) : 'never'}`);
  if (!(seen.refused < 10000)) problems.push(`no patch was refused within 10 s of the database going silent (${seen.refused ? ms(seen.refused) : 'never'})`);
  if (!(seen.readyz < 10000)) problems.push(`/readyz did not say 503 within 10 s of the database going silent (last ${seen.last.readyz})`);
  if (!(seen.health < 10000)) problems.push(`health did not say NOT_SERVING within 10 s of the database going silent (last ${seen.last.health})`);
  problems.push(...exited([syncd, bridge]));

  const [ready, accepted] = await Promise.all([
    pollUntil(readyz, (s) => s === 200, 30000, '/readyz 200 after the database answers again', 50).catch((e) => e),
    acceptedPush(client, 'probe', 30000, 50).catch((e) => e),
  ]);
  for (const x of [ready, accepted]) if (x instanceof Error) problems.push(x.message);
  console.log(`# after the silence: /readyz 200 in ${ready instanceof Error ? 'never' : ms(ready.at - healed)}, ` +
    `first accepted patch in ${accepted instanceof Error ? 'never' : ms(accepted - healed)}`);

  await progress(writers, 15, 30000, 'after the silence').catch((e) => problems.push(e.message));
  for (const w of writers) await w.settle(30000).catch((e) => problems.push(e.message));
  problems.push(...hangs(writers));
  const check = await checkLog(db.url, channel, { writers, readers, ackedBefore });
  problems.push(...check.problems);
  console.log(`# ${check.head} versions stored; readers reconnected ${readers.map((r) => `${r.name} ${r.reconnects}x`).join(', ')}`);
  stop();
  problems.push(...exited([syncd, bridge]));
  report(problems, { name: 'syncd', ...syncd }, { name: 'sync-bridge', ...bridge });
});

test('PostgreSQL connections reset: syncd reconnects, nothing acked is lost', async () => {
  const { db, proxy, syncd } = await syncdBehindProxy();
  const bridge = await startBridge(syncd.grpcPort);
  cleanups.push(() => stopProcess(bridge, 'sync-bridge'));
  const client = syncClient(`127.0.0.1:${syncd.grpcPort}`);
  const channel = 'reset-db';
  const writers = [new SessionWriter(client, channel, 'grpc').start(), new WsWriter(bridge.url, channel, 'ws').start()];
  const readers = [new WatchReader(client, channel).start(), new WsReader(bridge.url, channel).start()];
  const stop = track(...writers, ...readers, client);
  const problems = [];

  await progress(writers, 20, 30000, 'before the first reset');
  const ackedBefore = ackedSoFar(writers);
  for (let round = 1; round <= 3; round++) {
    const open = proxy.connections;
    proxy.cut();
    const cut = now();
    const accepted = await acceptedPush(client, 'probe', 30000, 50).catch((e) => e);
    if (accepted instanceof Error) problems.push(accepted.message);
    await progress(writers, 10, 30000, `after reset ${round}`).catch((e) => problems.push(e.message));
    console.log(`# reset ${round}: ${open} connections cut; first accepted patch ${accepted instanceof Error ? 'never' : `in ${ms(accepted - cut)}`}, ` +
      `10 more from each writer in ${ms(now() - cut)}`);
  }
  for (const w of writers) await w.settle(30000).catch((e) => problems.push(e.message));
  problems.push(...hangs(writers));
  const check = await checkLog(db.url, channel, { writers, readers, ackedBefore });
  problems.push(...check.problems);
  console.log(`# ${check.head} versions stored; readers reconnected ${readers.map((r) => `${r.name} ${r.reconnects}x`).join(', ')}`);
  stop();
  // The readiness probe's own connection was reset too: it may take a moment.
  await pollUntil(() => httpStatus(`http://127.0.0.1:${syncd.httpPort}/readyz`), (s) => s === 200, 10000, '/readyz 200 at the end')
    .catch((e) => problems.push(e.message));
  problems.push(...exited([syncd, bridge]));
  report(problems, { name: 'syncd', ...syncd }, { name: 'sync-bridge', ...bridge });
});

test('syncd goes silent behind the bridge (--upstream-keepalive 2): sockets close 1013, then resume from their version', async () => {
  const db = createDatabase();
  cleanups.push(() => db.drop());
  // syncd pings its clients too: the bridge's share of the channel (its
  // Watch) is dropped once the bridge stops answering.
  const syncd = await startSyncd(db.url, ['--keepalive', '2', '--keepalive-timeout', '2']);
  cleanups.push(() => stopProcess(syncd, 'syncd'));
  const proxy = await FaultProxy.start(syncd.grpcPort);
  cleanups.push(() => proxy.close());
  const bridge = await startBridge(proxy.port, ['--upstream-keepalive', '2']);
  cleanups.push(() => stopProcess(bridge, 'sync-bridge'));
  const client = syncClient(`127.0.0.1:${syncd.grpcPort}`);  // straight to syncd, past the proxy
  const channel = 'silent-syncd';
  const wsWriter = new WsWriter(bridge.url, channel, 'ws').start();
  const direct = new SessionWriter(client, channel, 'grpc').start();
  const wsReader = new WsReader(bridge.url, channel).start();
  const readers = [wsReader, new WatchReader(client, channel).start()];
  const writers = [wsWriter, direct];
  const stop = track(...writers, ...readers, client);
  const bridgeReadyz = () => httpStatus(`${bridge.http}/readyz`);
  const problems = [];

  await progress(writers, 20, 30000, 'before the silence');
  const ackedBefore = ackedSoFar(writers);
  const connected = async () => (await unary(client, 'GetChannelInfo', { channel }, 3000).catch(() => ({}))).connectedClients;
  const before = await connected();  // the direct Session and Watch, and the bridge's Watch
  const closed1013 = (from) => ({
    reader: wsReader.closes.find((c) => c.at >= from)?.code,
    writer: wsWriter.events.find((e) => e.at >= from && e.what === 'socket closed')?.code,
    readerAt: wsReader.closes.find((c) => c.at >= from)?.at,
    writerAt: wsWriter.events.find((e) => e.at >= from && e.what === 'socket closed')?.at,
  });
  proxy.blackhole();
  const hole = now();
  // Silent until both sockets have closed and the direct writer has moved
  // the channel on (what the bridge's sockets must catch up with), or 25 s.
  const seen = {};
  const base = direct.accepted();
  while (now() - hole < 25000) {
    const [r, n] = await Promise.all([bridgeReadyz(), connected()]);
    if (r === 503) seen.readyz ??= now() - hole;
    if (n < before) seen.dropped ??= now() - hole;
    const c = closed1013(hole);
    if (c.readerAt && c.writerAt && seen.dropped && direct.accepted() >= base + 20) break;
    await sleep(100);
  }
  const healed = now();
  proxy.heal();
  const c = closed1013(hole);
  console.log(`# syncd silent behind the bridge for ${ms(healed - hole)}: reader socket closed ${c.reader ?? 'never'} after ` +
    `${c.readerAt ? ms(c.readerAt - hole) : '-'}, writer socket closed ${c.writer ?? 'never'} after ${c.writerAt ? ms(c.writerAt - hole) : '-'}; ` +
    `bridge /readyz 503 after ${seen.readyz ? ms(seen.readyz) : 'never'}; syncd dropped the bridge's Watch after ` +
    `${seen.dropped ? ms(seen.dropped) : 'never'} (clients on the channel: ${before} before)`);
  if (c.reader !== 1013 || !(c.readerAt - hole < 15000)) problems.push(`the reader's socket was not closed 1013 within 15 s (${c.reader}, ${c.readerAt ? ms(c.readerAt - hole) : 'never'})`);
  if (!/^1013/.test(c.writer ?? '') || !(c.writerAt - hole < 15000)) problems.push(`the writer's socket was not closed 1013 within 15 s (${c.writer}, ${c.writerAt ? ms(c.writerAt - hole) : 'never'})`);
  if (!(seen.readyz < 15000)) problems.push('the bridge\'s /readyz never said 503 while syncd was silent');
  if (!(seen.dropped < 10000)) problems.push(`syncd (--keepalive 2 --keepalive-timeout 2) did not drop the silent bridge's Watch within 10 s`);

  // The sockets come back (from their last version) and go on.
  const resumed = await waitFor(() => wsWriter.connected, 30000, 'the writer\'s socket to reconnect').then(() => now()).catch((e) => e);
  if (resumed instanceof Error) problems.push(resumed.message);
  await progress(writers, 15, 30000, 'after the silence').catch((e) => problems.push(e.message));
  console.log(`# after the silence: writer socket open again in ${resumed instanceof Error ? 'never' : ms(resumed - healed)}, ` +
    `15 more patches from each writer in ${ms(now() - healed)}`);
  for (const w of writers) await w.settle(30000).catch((e) => problems.push(e.message));
  // Within the keepalive bound (2 s + 5 s) and then some: sockets open when
  // syncd went silent, and those opened meanwhile.
  problems.push(...hangs([direct]), ...hangs([wsWriter], 15000, 15000));
  const check = await checkLog(db.url, channel, { writers, readers, ackedBefore });
  problems.push(...check.problems);
  console.log(`# ${check.head} versions stored; readers reconnected ${readers.map((r) => `${r.name} ${r.reconnects}x`).join(', ')}`);
  stop();
  problems.push(...exited([syncd, bridge]));
  report(problems, { name: 'syncd', ...syncd }, { name: 'sync-bridge', ...bridge });
});
