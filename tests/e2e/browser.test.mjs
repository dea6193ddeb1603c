// The demo page in a real browser (Debian's Chromium, driven by
// playwright-core): two windows, an edit in one appears in the other.
// A screenshot is kept in build/test-artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, '..', '..', 'build', 'test-artifacts');
let db;
let syncd;
let bridge;
let browser;

before(async () => {
  db = createDatabase();
  syncd = await startSyncd(db.url);
  bridge = await startBridge(syncd.grpcPort);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
});

test('an edit in one window appears in the other', async () => {
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => assert.fail(`page error: ${e.message}`));
    await page.goto(`${bridge.http}/?channel=browser`);
    await page.getByTestId('connection').filter({ hasText: /^connected$/ }).waitFor();
    pages.push(page);
  }
  const [one, two] = pages;

  await one.getByTestId('new-name').fill('Ada Lovelace');
  await one.getByTestId('add').click();
  await two.locator('[data-testid=node-name]').first().waitFor();
  assert.equal(await two.locator('[data-testid=node-name]').first().inputValue(), 'Ada Lovelace');
  await one.getByTestId('pending').filter({ hasText: /^0$/ }).waitFor();
  assert.equal(await one.getByTestId('version').textContent(), '1');

  // Edit in the second window, see it in the first.
  const field = two.locator('[data-testid=node-name]').first();
  await field.fill('Ada, Countess of Lovelace');
  await field.press('Enter');
  await field.blur();
  await one.waitForFunction(() => document.querySelector('[data-testid=node-name]')?.value === 'Ada, Countess of Lovelace');
  await one.getByTestId('version').filter({ hasText: /^2$/ }).waitFor();

  await one.getByTestId('new-name').fill('Charles Babbage');
  await one.getByTestId('add').click();
  await two.waitForFunction(() => document.querySelectorAll('[data-testid=node-name]').length === 2);

  mkdirSync(artifacts, { recursive: true });
  await two.screenshot({ path: path.join(artifacts, 'demo-page.png'), fullPage: true });

  // Delete in one, gone in the other.
  await two.locator('[data-testid=delete]').first().click();
  await one.waitForFunction(() => document.querySelectorAll('[data-testid=node-name]').length === 1);
});

test('each window lists the other with the name it chose, marks what it edits, and drops it when it closes', async () => {
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => assert.fail(`page error: ${e.message}`));
    await page.goto(`${bridge.http}/?channel=browser-presence`);
    await page.getByTestId('connection').filter({ hasText: /^connected$/ }).waitFor();
    pages.push(page);
  }
  const [one, two] = pages;
  const [oneName, twoName] = await Promise.all(pages.map((p) => p.getByTestId('me').textContent()));
  assert.ok(oneName && twoName, 'each window has a name');

  // Each lists the other (and not itself), with the other's colour.
  const other = (page) => page.getByTestId('presence-member');
  await other(one).filter({ hasText: twoName }).waitFor();
  await other(two).filter({ hasText: oneName }).waitFor();
  assert.equal(await other(one).count(), 1);
  assert.equal(await other(two).count(), 1);
  const colour = async (page, sel) => page.locator(sel).first().evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(await colour(one, '[data-testid=presence-member] .swatch'), await colour(two, '#me-swatch'));

  // Editing a node shows the editor's dot beside it in the other window.
  await one.getByTestId('new-name').fill('Ada Lovelace');
  await one.getByTestId('add').click();
  await two.locator('[data-testid=node-name]').first().waitFor();
  await two.locator('[data-testid=node-name]').first().focus();
  await one.locator('li .editors .swatch').first().waitFor();
  assert.equal(await one.locator('li .editors .swatch').first().getAttribute('title'), `${twoName} is editing this`);
  await two.locator('[data-testid=node-name]').first().blur();
  await one.locator('li .editors .swatch').waitFor({ state: 'detached' });

  // A window that closes leaves the other's list at once.
  await two.context().close();
  await other(one).waitFor({ state: 'detached' });
  assert.equal(await one.locator('#others-label').textContent(), 'nobody else here');
});
