// clients/js with `storage: 'indexeddb'` in a real browser (Debian's
// Chromium, driven by playwright-core) against real syncd and sync-bridge
// processes: edits made offline survive a reload, show before any network
// and land exactly once; two tabs of one channel share the store without
// losing or duplicating an edit. "Offline" is the page's WebSockets being
// refused (playwright's routeWebSocket), so pages still load.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { syncClient, unary } from './fault_grpc.mjs';
import { launchChromium } from './chromium.mjs';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';

let db;
let syncd;
let bridge;
let grpc;
let browser;

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url);
  bridge = await startBridge(syncd.grpcPort);
  grpc = syncClient(`127.0.0.1:${syncd.grpcPort}`);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  grpc?.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
});

const until = async (pred, what, ms = 20000) => {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

// The channel's log as the server holds it (GetChanges, page by page).
async function serverLog(channel) {
  const patches = [];
  for (let from = 0; ;) {
    const r = await unary(grpc, 'GetChanges', { channel, fromVersion: from, limit: 500 });
    patches.push(...(r.patches ?? []));
    if (!r.hasMore) return patches;
    from = r.version;
  }
}

// A browser context (one origin's IndexedDB, shared by its pages) whose
// WebSockets follow `net.mode`: 'offline' refuses them, 'online' relays
// them to the bridge, 'deaf' relays them but drops the server's
// patch_responses. `net.sent` lists the id of every patch frame a page sent
// to the server, `net.answers` every patch_response that reached a page,
// as [patchId, status].
async function browserContext() {
  const context = await browser.newContext();
  const net = { mode: 'offline', sent: [], answers: [] };
  // A blank page of the bridge's origin: the client modules come from the bridge.
  await context.route(`${bridge.http}/blank`, (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>blank</title>' }));
  await context.routeWebSocket(/\/sync\?/, (ws) => {
    if (net.mode === 'offline') {
      ws.close({ code: 4000, reason: 'offline' });
      return;
    }
    const deaf = net.mode === 'deaf';
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'patch') net.sent.push(frame.payload.id);
      server.send(m);
    });
    server.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'patch_response') {
        if (deaf) return;
        net.answers.push([frame.payload.patchId, frame.payload.status]);
      }
      ws.send(m);
    });
  });
  return { context, net };
}

async function newPage(context) {
  const page = await context.newPage();
  page.on('pageerror', (e) => assert.fail(`page error: ${e.message}`));
  await page.goto(`${bridge.http}/blank`);
  return page;
}

// Starts a client with IndexedDB storage in `page` (window.client) and
// returns what it shows at once: before any network.
const start = (page, channel) => page.evaluate(async (channel) => {
  const { createSyncClient } = await import('/sync-client.js');
  const client = await createSyncClient({ serverUrl: `ws://${location.host}/sync`, channel, storage: 'indexeddb',
    reconnectInterval: 100, maxReconnectInterval: 300, checkpointInterval: 100 });
  window.client = client;
  const { nodes, version } = client.snapshot();
  return { nodes, version, pending: client.getPendingPatches().map((p) => p.id), owner: client.storage.owner };
}, channel);

const state = (page) => page.evaluate(() => {
  const { nodes, edges, version } = window.client.snapshot();
  return { nodes, edges, version, pending: window.client.getPendingPatches().map((p) => p.id), owner: window.client.storage.owner };
});

// Makes `n` edits in `page` (nodes `prefix-i`, each renamed once) and
// resolves to their ids once they are stored.
const edit = (page, prefix, n) => page.evaluate(async ({ prefix, n }) => {
  const c = window.client;
  const before = c.getPendingPatchCount();
  for (let i = 0; i < n; i++) {
    c.createNode('Item', { i }, `${prefix}-${i}`);
    c.setProperty('node', `${prefix}-${i}`, 'name', `${prefix} ${i}`);
  }
  await c.flush();
  return c.getPendingPatches().slice(before).map((p) => p.id);
}, { prefix, n });

const settled = (page) => page.waitForFunction(() => window.client.isReady() && window.client.getPendingPatchCount() === 0,
  null, { timeout: 20000, polling: 50 });

test('edits made offline survive a reload, show before any network, and land exactly once', async () => {
  const channel = 'idb-offline';
  const { context, net } = await browserContext();
  try {
    const page = await newPage(context);
    const fresh = await start(page, channel);
    assert.deepEqual(fresh, { nodes: {}, version: 0, pending: [], owner: true });
    const ids = await edit(page, 'n', 10);
    assert.equal(ids.length, 20);

    // Offline still: the reloaded page shows every edit at once, with its id, in order.
    await page.reload();
    const shown = await start(page, channel);
    assert.deepEqual(shown.pending, ids);
    assert.equal(Object.keys(shown.nodes).length, 10);
    assert.deepEqual(shown.nodes['n-7'].properties, { i: 7, name: 'n 7' });

    // Online: each edit is sent once and stored once, in the order made.
    net.mode = 'online';
    await settled(page);
    assert.deepEqual(net.sent, ids);
    assert.deepEqual((await serverLog(channel)).map((p) => p.id), ids);

    // A reload now resumes from the stored version with nothing pending.
    await page.waitForFunction(() => window.client.getServerVersion() === 20);
    await page.evaluate(() => window.client.close());
    await page.reload();
    net.mode = 'offline';
    const resumed = await start(page, channel);
    assert.equal(resumed.version, 20);
    assert.deepEqual(resumed.pending, []);
    assert.deepEqual(resumed.nodes, shown.nodes);
  } finally {
    await context.close();
  }
});

test('edits the server stored before their answers arrived are resent after a reload and answered ignored', async () => {
  const channel = 'idb-unanswered';
  const { context, net } = await browserContext();
  try {
    const page = await newPage(context);
    net.mode = 'deaf';  // online, but the answers are dropped on their way back
    await start(page, channel);
    const ids = await edit(page, 'u', 3);
    await until(async () => (await serverLog(channel)).length === ids.length, 'the server stores the edits');
    assert.deepEqual((await state(page)).pending, ids, 'unanswered, so still pending');

    // A reload with answers let through: each comes back ignored and counts once.
    net.mode = 'online';
    await page.reload();
    assert.deepEqual((await start(page, channel)).pending, ids);
    await settled(page);
    // The history (since 0) confirms them before the answers come: wait for those too.
    await until(() => net.answers.length >= ids.length, 'an answer to each resent edit');
    assert.deepEqual(net.answers, ids.map((id) => [id, 'ignored']));
    assert.deepEqual((await serverLog(channel)).map((p) => p.id), ids);
    assert.equal((await state(page)).version, 6);
  } finally {
    await context.close();
  }
});

test('two tabs on one channel: one owns the store, the other takes it over when the first reloads; no edit is lost or sent twice', async () => {
  const channel = 'idb-tabs';
  const { context, net } = await browserContext();
  try {
    net.mode = 'online';
    const one = await newPage(context);
    const two = await newPage(context);
    assert.equal((await start(one, channel)).owner, true);
    assert.equal((await start(two, channel)).owner, false, 'the second tab waits for the store');
    const online = [...await edit(one, 'a', 2), ...await edit(two, 'b', 2)];
    await Promise.all([settled(one), settled(two)]);

    // Offline, both edit; the owner's edits are stored, the other tab's kept in memory.
    net.mode = 'offline';
    await Promise.all([one, two].map((p) => p.evaluate(() => window.client.ws.close())));
    await Promise.all([one, two].map((p) => p.waitForFunction(() => !window.client.isReady())));
    const offlineOne = await edit(one, 'c', 3);
    const offlineTwo = await edit(two, 'd', 3);

    // The owner reloads: the other tab takes the store over, with the owner's unsent edits.
    await one.reload();
    await two.waitForFunction(() => window.client.storage.owner, null, { timeout: 20000 });
    await two.waitForFunction((n) => window.client.getPendingPatchCount() === n, offlineOne.length + offlineTwo.length);
    assert.deepEqual(new Set((await state(two)).pending), new Set([...offlineOne, ...offlineTwo]));
    const reloaded = await start(one, channel);
    assert.equal(reloaded.owner, false);
    assert.deepEqual(reloaded.pending, [], 'the store\'s pending edits are its owner\'s to send');
    assert.ok(reloaded.version >= 8, 'the stored confirmed graph shows at once');

    // Online: every edit lands once, each sent once; both tabs show the same graph.
    net.sent = [];
    net.mode = 'online';
    await Promise.all([settled(one), settled(two)]);
    const all = [...online, ...offlineOne, ...offlineTwo];
    const log = (await serverLog(channel)).map((p) => p.id);
    assert.deepEqual([...log].sort(), [...all].sort(), 'every edit once');
    assert.deepEqual([...net.sent].sort(), [...offlineOne, ...offlineTwo].sort(), 'each sent once');
    await one.waitForFunction((v) => window.client.getServerVersion() === v, log.length);
    await two.waitForFunction((v) => window.client.getServerVersion() === v, log.length);
    const [a, b] = await Promise.all([state(one), state(two)]);
    assert.deepEqual(a.nodes, b.nodes);
    assert.equal(Object.keys(a.nodes).length, 10);

    // The store is whole: closed and opened again offline, it shows that graph with nothing pending.
    await two.evaluate(() => window.client.close());
    await one.waitForFunction(() => window.client.storage.owner);
    await one.evaluate(() => window.client.close());
    net.mode = 'offline';
    await two.reload();
    const stored = await start(two, channel);
    assert.equal(stored.owner, true);
    assert.deepEqual(stored.pending, []);
    assert.deepEqual(stored.nodes, a.nodes);
    assert.equal(stored.version, log.length);
  } finally {
    await context.close();
  }
});
