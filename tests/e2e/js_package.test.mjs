// clients/js as an npm package: `npm pack` makes a tarball of just the
// client, which installs (with `ws`, as a user adds it) into a new project
// that imports it by name and works against real syncd and sync-bridge
// processes; `npm install ./clients/js` does the same from the directory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, startBridge, startSyncd } from './syncd_process.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const clientDir = path.join(here, '..', '..', 'clients', 'js');
const wsDir = path.join(here, 'node_modules', 'ws');
let db;
let syncd;
let bridge;
let tmp;

before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'sync-client-package-'));
  db = createDatabase();
  syncd = await startSyncd(db.url);
  bridge = await startBridge(syncd.grpcPort);
});
after(async () => {
  await bridge?.stop();
  await syncd?.stop();
  db?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'],
  { cwd, encoding: 'utf8' });

// What a user of the package writes: imports by name, a WebSocket class
// passed in, durable storage, one edit confirmed by the server.
const program = `
import WebSocket from 'ws';
import { createSyncClient, EVENTS } from '@syncd/client';
import { FileStorage } from '@syncd/client/file-storage';

const [url, channel, dir] = process.argv.slice(2);
const client = await createSyncClient({ serverUrl: url, channel, clientId: 'packaged', WebSocket, storage: dir });
await client.whenSynced();
client.createNode('Note', { from: 'the package' }, 'note');
await new Promise((resolve) => {
  const check = () => client.getPendingPatchCount() === 0 && resolve();
  client.onChange(check);
  check();
});
const result = { version: client.getServerVersion(), node: client.getNode('note'), events: EVENTS,
  fileStorage: typeof FileStorage.open };
await client.close();
let internal;
try {
  await import('@syncd/client/sync-client/graph.js');
} catch (e) {
  internal = e.code;
}
console.log(JSON.stringify({ ...result, internal }));
`;

function project(name, install) {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  writeFileSync(path.join(dir, 'main.mjs'), program);
  // --offline: a tarball and directories need no registry (the optional peers are not installed).
  npm(['install', '--offline', install, wsDir], dir);
  return dir;
}

const run = (dir, channel) => JSON.parse(execFileSync(process.execPath,
  ['main.mjs', `${bridge.url}/sync`, channel, path.join(dir, 'store')], { cwd: dir, encoding: 'utf8', timeout: 30000 }));

test('npm pack holds the client, its types and README, and nothing else', () => {
  const [packed] = JSON.parse(npm(['pack', '--dry-run', '--json'], clientDir));
  const files = packed.files.map((f) => f.path).sort();
  const modules = files.filter((f) => f.startsWith('sync-client/') && f.endsWith('.js'));
  assert.deepEqual(files.filter((f) => !modules.includes(f)),
    ['README.md', 'package.json', 'sync-client.d.ts', 'sync-client.js', 'sync-client/file-storage.d.ts',
      'sync-client/indexeddb-storage.d.ts']);
  assert.ok(modules.includes('sync-client/client.js') && modules.includes('sync-client/file-storage.js'));
  assert.equal(packed.name, '@syncd/client');
});

for (const [how, install] of [
  ['the tarball of npm pack', () => {
    const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], clientDir));
    return path.join(tmp, packed.filename);
  }],
  ['npm install ./clients/js', () => clientDir],
]) {
  test(`installed from ${how}, the client imports by name and syncs with a real bridge`, () => {
    const name = how.startsWith('the tarball') ? 'from-tarball' : 'from-directory';
    const dir = project(name, install());
    const result = run(dir, name);
    assert.deepEqual(result, {
      version: 1,
      node: { label: 'Note', properties: { from: 'the package' } },
      events: ['change', 'rejected', 'status', 'error', 'presence'],
      fileStorage: 'function',
      internal: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    });
  });
}
