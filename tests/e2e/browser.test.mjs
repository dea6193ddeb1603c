// The demo page in a real browser (Debian's Chromium, driven by
// playwright-core): two windows edit the drawn graph through clicks and
// each sees the other's edits and selection; edits made offline survive a
// reload and land once. A screenshot is kept in build/test-artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { syncClient, unary } from './fault_grpc.mjs';
import { launchChromium } from './chromium.mjs';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, '..', '..', 'build', 'test-artifacts');
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

async function open(context, channel) {
  const page = await context.newPage();
  page.on('pageerror', (e) => assert.fail(`page error: ${e.message}`));
  await page.goto(`${bridge.http}/?channel=${channel}`);
  return page;
}
const connected = (page) => page.getByTestId('connection').filter({ hasText: /^connected$/ }).waitFor();

// What a page draws: node names (sorted), edge labels, pending (dashed) node names.
const drawn = (page) => page.evaluate(() => ({
  nodes: [...document.querySelectorAll('[data-testid=node] .name')].map((t) => t.textContent).sort(),
  edges: [...document.querySelectorAll('[data-testid=edge] .edge-label')].map((t) => t.textContent).sort(),
  pending: [...document.querySelectorAll('[data-testid=node].pending .name')].map((t) => t.textContent).sort(),
}));
// Waits until `page` draws exactly these node names and edge labels.
const drawsGraph = (page, nodes, edges) => page.waitForFunction(([nodes, edges]) => {
  const texts = (sel) => JSON.stringify([...document.querySelectorAll(sel)].map((t) => t.textContent).sort());
  return texts('[data-testid=node] .name') === JSON.stringify([...nodes].sort()) &&
    texts('[data-testid=edge] .edge-label') === JSON.stringify([...edges].sort());
}, [nodes, edges], { timeout: 20000, polling: 50 });

const node = (page, name) => page.locator('[data-testid=node]').filter({ has: page.locator('.name', { hasText: new RegExp(`^${name}$`) }) });
async function addNode(page, name) {
  await page.getByTestId('new-name').fill(name);
  await page.getByTestId('add').click();
}

test('two windows draw the same graph and edit it through clicks: add, rename, connect, delete', async () => {
  const [one, two] = await Promise.all([1, 2].map(async () => open(await browser.newContext(), 'browser')));
  await Promise.all([one, two].map(connected));
  const twoName = await two.getByTestId('me').textContent();

  await addNode(one, 'Ada');
  await addNode(two, 'Charles');
  await Promise.all([one, two].map((p) => drawsGraph(p, ['Ada', 'Charles'], [])));
  await one.getByTestId('pending').filter({ hasText: /^0$/ }).waitFor();
  assert.equal(await one.getByTestId('version').textContent(), '2');

  // Rename in the second window.
  await node(two, 'Ada').click();
  await two.getByTestId('node-name').fill('Ada L');
  await two.getByTestId('rename').click();
  await drawsGraph(one, ['Ada L', 'Charles'], []);

  // The second window's selection is a ring in its colour in the first.
  await node(two, 'Charles').click();
  await node(one, 'Charles').locator('[data-testid=ring]').waitFor();
  assert.equal(await node(one, 'Charles').locator('[data-testid=ring] title').textContent(), `${twoName} selected this`);
  assert.equal(await one.locator('[data-testid=ring]').count(), 1);

  // Connect: a node, "Connect to…", the other node, a label.
  await node(one, 'Ada L').click();
  await one.getByTestId('connect').click();
  await node(one, 'Charles').click();
  await one.getByTestId('edge-label').fill('KNOWS');
  await one.getByTestId('create-edge').click();
  await Promise.all([one, two].map((p) => drawsGraph(p, ['Ada L', 'Charles'], ['KNOWS'])));
  await addNode(two, 'Grace');
  await Promise.all([one, two].map((p) => drawsGraph(p, ['Ada L', 'Charles', 'Grace'], ['KNOWS'])));
  mkdirSync(artifacts, { recursive: true });
  await one.screenshot({ path: path.join(artifacts, 'demo-page.png'), fullPage: true });

  // Dragging a node moves it in both windows.
  const where = (page) => node(page, 'Grace').getAttribute('transform');
  const before = await where(two);
  const box = await node(one, 'Grace').locator('circle.body').boundingBox();
  await one.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await one.mouse.down();
  await one.mouse.move(box.x + box.width / 2 - 60, box.y + box.height / 2 + 40, { steps: 5 });
  await one.mouse.up();
  await two.waitForFunction((before) => [...document.querySelectorAll('[data-testid=node]')]
    .find((n) => n.querySelector('.name').textContent === 'Grace').getAttribute('transform') !== before, before);
  assert.equal(await where(one), await where(two));

  // Delete the edge in the second window, then a node in the first.
  await two.locator('[data-testid=edge]').click();
  await two.getByTestId('delete-edge').click();
  await Promise.all([one, two].map((p) => drawsGraph(p, ['Ada L', 'Charles', 'Grace'], [])));
  await node(one, 'Grace').click();
  await one.getByTestId('delete-node').click();
  await Promise.all([one, two].map((p) => drawsGraph(p, ['Ada L', 'Charles'], [])));
  for (const p of [one, two]) {
    await p.getByTestId('pending').filter({ hasText: /^0$/ }).waitFor();
    assert.deepEqual((await drawn(p)).pending, []);
    assert.equal(await p.getByTestId('version').textContent(), '8');
  }
  await Promise.all([one, two].map((p) => p.context().close()));
});

test('each window lists the other with the name it chose, and drops it when it closes', async () => {
  const pages = await Promise.all([1, 2].map(async () => open(await browser.newContext(), 'browser-presence')));
  await Promise.all(pages.map(connected));
  const [one, two] = pages;
  const [oneName, twoName] = await Promise.all(pages.map((p) => p.getByTestId('me').textContent()));
  assert.ok(oneName && twoName, 'each window has a name');

  const other = (page) => page.getByTestId('presence-member');
  await other(one).filter({ hasText: twoName }).waitFor();
  await other(two).filter({ hasText: oneName }).waitFor();
  assert.equal(await other(one).count(), 1);
  assert.equal(await other(two).count(), 1);
  const colour = async (page, sel) => page.locator(sel).first().evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(await colour(one, '[data-testid=presence-member] .swatch'), await colour(two, '#me-swatch'));

  await two.context().close();
  await other(one).waitFor({ state: 'detached' });
  assert.equal(await one.locator('#others-label').textContent(), 'nobody else here');
  await one.context().close();
});

test('edits made offline are drawn dashed, kept across a reload, and land once when back online', async () => {
  const channel = 'browser-offline';
  const context = await browser.newContext();
  // While offline, the page's WebSockets are refused; the page itself still loads.
  let online = true;
  await context.routeWebSocket(/\/sync\?/, (ws) => (online ? ws.connectToServer() : ws.close({ code: 4000, reason: 'offline' })));
  try {
    const page = await open(context, channel);
    await connected(page);
    await addNode(page, 'Ada');
    await page.getByTestId('pending').filter({ hasText: /^0$/ }).waitFor();

    online = false;
    await page.evaluate(() => window.syncClient.ws.close());
    await page.getByTestId('offline').waitFor();
    await addNode(page, 'Bob');
    await node(page, 'Ada').click();
    await page.getByTestId('node-name').fill('Ada L');
    await page.getByTestId('rename').click();
    assert.deepEqual(await drawn(page), { nodes: ['Ada L', 'Bob'], edges: [], pending: ['Ada L', 'Bob'] });
    const ids = await page.evaluate(async () => {
      await window.syncClient.flush();
      return window.syncClient.getPendingPatches().map((p) => p.id);
    });
    assert.equal(ids.length, 2);

    // Reloaded, still offline: the stored graph and the unsent edits are drawn at once.
    await page.reload();
    await drawsGraph(page, ['Ada L', 'Bob'], []);
    assert.deepEqual((await drawn(page)).pending, ['Ada L', 'Bob']);
    // Ada's creation too, if its answer came after the last checkpoint: resent, it is answered ignored.
    const reloaded = await page.evaluate(() => window.syncClient.getPendingPatches().map((p) => p.id));
    assert.deepEqual(reloaded.slice(-2), ids);
    assert.ok(reloaded.length <= 3);
    assert.equal(await page.getByTestId('pending').textContent(), String(reloaded.length));
    assert.ok(await page.getByTestId('offline').isVisible());

    // A second tab of the page says it does not keep the store; when the first closes it does.
    const second = await open(context, channel);
    await second.getByTestId('unstored').waitFor();
    await page.close();
    await second.getByTestId('unstored').waitFor({ state: 'hidden' });
    await drawsGraph(second, ['Ada L', 'Bob'], []);

    // Back online: each edit lands once.
    online = true;
    await connected(second);
    await second.getByTestId('pending').filter({ hasText: /^0$/ }).waitFor({ timeout: 30000 });
    const log = await unary(grpc, 'GetChanges', { channel, fromVersion: 0, limit: 100 });
    assert.equal(log.patches.length, 3);
    assert.deepEqual(log.patches.slice(1).map((p) => p.id), ids);
    assert.deepEqual((await drawn(second)).pending, []);
  } finally {
    await context.close();
  }
});
