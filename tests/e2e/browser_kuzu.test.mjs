// clients/js with kuzu-wasm's browser build in a real browser (Debian's
// Chromium, driven by playwright-core): two pages, each a client with a
// local KuzuDB, see each other's edits through Cypher. The bridge serves
// the client; the test serves kuzu-wasm's files under the bridge's origin
// (browsers start workers from the page's origin only), as an application
// would from its own server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const kuzuDir = path.join(here, 'node_modules', 'kuzu-wasm');
let db;
let syncd;
let bridge;
let browser;

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url);
  bridge = await startBridge(syncd.grpcPort);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
});

// A page at the bridge's origin, with /kuzu-wasm/* answered from node_modules.
async function openPage() {
  const context = await browser.newContext();
  await context.route(`${bridge.http}/kuzu-wasm/*`, (route) => {
    const name = path.basename(new URL(route.request().url()).pathname);
    if (!['index.js', 'kuzu_wasm_worker.js'].includes(name)) return route.fulfill({ status: 404 });
    return route.fulfill({ contentType: 'text/javascript', body: readFileSync(path.join(kuzuDir, name)) });
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => assert.fail(`page error: ${e.message}`));
  // A document the bridge serves (the client's source, shown as text): a
  // page made up by the test would not count as local, and Chromium would
  // block its WebSocket to the bridge.
  await page.goto(`${bridge.http}/sync-client.js`);
  // The client, as an application starts it: the kuzu-wasm module passed in.
  await page.evaluate(async (serverUrl) => {
    const { createSyncClient } = await import('/sync-client.js');
    const kuzu = (await import('/kuzu-wasm/index.js')).default;
    window.client = await createSyncClient({ serverUrl, channel: 'browser-kuzu', databasePath: ':memory:', kuzu });
    await window.client.whenSynced();
  }, `${bridge.url}/sync`);
  return page;
}

const names = (page) => page.evaluate(async () =>
  (await window.client.query('MATCH (p:Person) RETURN p.name AS name ORDER BY name')).map((r) => r.name));

test('two pages with a local KuzuDB see each other\'s edits through Cypher', async () => {
  const one = await openPage();
  const two = await openPage();
  await one.evaluate(() => window.client.createNode('Person', { name: 'Ada', born: 1815 }));
  await two.evaluate(() => window.client.createNode('Person', { name: 'Grace', born: 1906 }));
  for (const page of [one, two]) {
    await page.waitForFunction(() => window.client.getServerVersion() === 2 && window.client.getPendingPatchCount() === 0);
    assert.deepEqual(await names(page), ['Ada', 'Grace']);
    assert.deepEqual(await page.evaluate(() => window.client.query('MATCH (p:Person) WHERE p.born < $year RETURN p.name AS n',
      { year: 1900 })), [{ n: 'Ada' }]);
    const [graph, snapshot] = await page.evaluate(async () => [await window.client.kuzuGraph(), window.client.snapshot()]);
    assert.deepEqual(graph, { nodes: snapshot.nodes, edges: snapshot.edges });
  }
  await assert.rejects(one.evaluate(() => window.client.query('MATCH (p) DELETE p')), /only reads the local graph/);
  for (const page of [one, two]) await page.evaluate(() => window.client.close());
});
