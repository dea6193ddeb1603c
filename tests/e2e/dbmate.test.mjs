// `syncd migrate` and the dbmate tool take turns on one database: both
// read migrations/ and keep their bookkeeping in schema_migrations.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createDatabase, startSyncd } from './syncd_process.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const migrations = path.join(here, '..', '..', 'migrations');
const dbmateBin = path.join(here, 'node_modules', '.bin', 'dbmate');
let db;

before(() => { db = createDatabase(); });
after(() => db?.drop());

function dbmate(...args) {
  // sslmode=disable: the test cluster has no TLS, and dbmate asks for it by default.
  const url = db.url + (db.url.includes('?') ? '&' : '?') + 'sslmode=disable';
  const r = spawnSync(dbmateBin, ['--url', url, '--migrations-dir', migrations, '--no-dump-schema', ...args],
    { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

function syncd(...args) {
  const r = spawnSync(process.env.SYNCD_BIN, [...args, '--database-url', db.url], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('dbmate sees what syncd migrate applied, and the reverse', async () => {
  // createDatabase() ran `syncd migrate up`.
  const afterSyncd = dbmate('status');
  assert.equal(afterSyncd.status, 0, afterSyncd.out);
  assert.match(afterSyncd.out, /Pending: 0/);

  // dbmate rolls one back; syncd reports it pending and refuses to serve.
  assert.equal(dbmate('rollback').status, 0);
  const status = syncd('migrate', 'status');
  assert.match(status.out, /\[pending\]/);
  const serve = spawnSync(process.env.SYNCD_BIN, ['serve', '--database-url', db.url, '--grpc-listen', '127.0.0.1:0',
    '--http-listen', '127.0.0.1:0'], { encoding: 'utf8' });
  assert.equal(serve.status, 1);
  assert.match(serve.stdout + serve.stderr, /syncd migrate up/);

  // dbmate applies it again; syncd serves.
  const up = dbmate('up');
  assert.equal(up.status, 0, up.out);
  assert.doesNotMatch(syncd('migrate', 'status').out, /\[pending\]/);
  const server = await startSyncd(db.url);
  await server.stop();

  // syncd reverts everything; dbmate sees nothing applied.
  while (!/nothing to revert/.test(syncd('migrate', 'down').out));
  const none = dbmate('status');
  assert.match(none.out, /Applied: 0/, none.out);
});
