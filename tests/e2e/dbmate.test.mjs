// `syncd migrate` and the dbmate tool take turns on one database: both
// read migrations/ and keep their bookkeeping in schema_migrations; and
// each, on a database of its own, leaves the same schema (pg_dump) at every
// step down and back up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createDatabase, startSyncd } from './syncd_process.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const migrations = path.join(here, '..', '..', 'migrations');
const dbmateBin = path.join(here, 'node_modules', '.bin', 'dbmate');
let db;

before(() => { db = createDatabase(); });
after(() => db?.drop());

function dbmateOn(dbUrl, ...args) {
  // sslmode=disable: the test cluster has no TLS, and dbmate asks for it by default.
  const url = dbUrl + (dbUrl.includes('?') ? '&' : '?') + 'sslmode=disable';
  const r = spawnSync(dbmateBin, ['--url', url, '--migrations-dir', migrations, '--no-dump-schema', ...args],
    { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}
const dbmate = (...args) => dbmateOn(db.url, ...args);

function syncdOn(dbUrl, ...args) {
  const r = spawnSync(process.env.SYNCD_BIN, [...args, '--database-url', dbUrl], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}
const syncd = (...args) => syncdOn(db.url, ...args);

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

// The schema as pg_dump prints it. Only the key of its \restrict and
// \unrestrict lines differs between dumps (a random nonce, PostgreSQL
// 15.14 and later); everything else must match.
function schema(url) {
  const r = spawnSync('pg_dump', ['--schema-only', '--no-owner', '--dbname', url], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.replace(/^\\(un)?restrict \S+$/gm, '\\$1restrict KEY');
}
const applied = (url) => spawnSync('psql', [url, '-tAc', 'SELECT version FROM schema_migrations ORDER BY 1'],
  { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);

test('syncd migrate and dbmate leave the same schema, down and back up', () => {
  const versions = readdirSync(migrations).filter((f) => /^\d+_.*\.sql$/.test(f)).map((f) => f.split('_')[0]).sort();
  const newest = versions.at(-1);
  assert.equal(newest, '20261202000003', 'the presence change-tracking migration is the newest');
  const bySyncd = createDatabase();  // migrated by `syncd migrate up`
  const byDbmate = { url: bySyncd.url.replace(/\/([^/?]*)(\?|$)/, '/$1_dbmate$2') };
  try {
    const created = dbmateOn(byDbmate.url, 'create');
    assert.equal(created.status, 0, created.out);
    const up = dbmateOn(byDbmate.url, 'up');
    assert.equal(up.status, 0, up.out);

    const top = schema(bySyncd.url);
    assert.equal(schema(byDbmate.url), top, 'after up');
    assert.match(top, /CREATE TABLE public\.schema_migrations \(\n {4}version character varying NOT NULL\n\);/);
    assert.match(top, /CREATE TABLE public\.compacted_ids/);
    assert.match(top, /compacted_through bigint DEFAULT 0 NOT NULL/);
    assert.match(top, /CREATE UNLOGGED TABLE public\.presence /);
    assert.match(top, /CREATE TABLE public\.client_positions/);
    for (const url of [bySyncd.url, byDbmate.url]) assert.deepEqual(applied(url), versions);

    // The newest migration down, each with its own tool: the same schema,
    // without what it added.
    const down = [syncdOn(bySyncd.url, 'migrate', 'down'), dbmateOn(byDbmate.url, 'rollback')];
    for (const r of down) assert.equal(r.status, 0, r.out);
    const before = schema(bySyncd.url);
    assert.equal(schema(byDbmate.url), before, `after reverting ${newest}`);
    assert.doesNotMatch(before, /written_by/);
    assert.match(before, /CREATE UNLOGGED TABLE public\.presence /);
    for (const url of [bySyncd.url, byDbmate.url]) assert.deepEqual(applied(url), versions.slice(0, -1));

    // Everything down: only the bookkeeping table is left, the same on both.
    for (const _ of versions.slice(1)) {
      const r = [syncdOn(bySyncd.url, 'migrate', 'down'), dbmateOn(byDbmate.url, 'rollback')];
      for (const x of r) assert.equal(x.status, 0, x.out);
    }
    assert.match(syncdOn(bySyncd.url, 'migrate', 'down').out, /nothing to revert/);
    for (const url of [bySyncd.url, byDbmate.url]) assert.deepEqual(applied(url), []);
    const bare = schema(bySyncd.url);
    assert.equal(schema(byDbmate.url), bare, 'after reverting everything');
    assert.doesNotMatch(bare, /CREATE TABLE public\.(?!schema_migrations)/);

    // And up again: the same schema as the first time.
    assert.equal(syncdOn(bySyncd.url, 'migrate', 'up').status, 0);
    assert.equal(dbmateOn(byDbmate.url, 'up').status, 0);
    assert.equal(schema(bySyncd.url), top, 'syncd: up, down, up');
    assert.equal(schema(byDbmate.url), top, 'dbmate: up, down, up');
  } finally {
    dbmateOn(byDbmate.url, 'drop');
    bySyncd.drop();
  }
});
