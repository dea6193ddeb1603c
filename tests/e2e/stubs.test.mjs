// The Python and Node examples on stubs generated from proto/, for real:
// each one's watcher, and syncctl tail, see the patches both pushed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, startSyncd } from './syncd_process.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const stubs = path.join(root, 'build', 'python-stubs');
const python = '/usr/bin/python3';  // Debian's, which has python3-grpcio
let db;
let syncd;
let env;

before(async () => {
  const gen = spawnSync(path.join(root, 'clients/python/generate.sh'), [stubs], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  db = createDatabase();
  syncd = await startSyncd(db.url);
  env = { ...process.env, SYNC_SERVER: `127.0.0.1:${syncd.grpcPort}`, SYNC_STUBS: stubs };
});
after(async () => {
  await syncd?.stop();
  db?.drop();
});

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
};

// Starts a watcher that stops after `limit` patches; resolves to its lines.
const watcher = (cmd, args) => {
  const child = spawn(cmd, args, { env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { child.kill(); reject(new Error(`watcher timed out: ${out}${err}`)); }, 30000);
    child.on('exit', (code) => {
      clearTimeout(t);
      if (code !== 0) reject(new Error(`watcher exited ${code}: ${err}`));
      else resolve(out.trim().split('\n').map((l) => JSON.parse(l)));
    });
  });
};

const py = path.join(root, 'clients/python/sync_example.py');
const js = path.join(root, 'clients/node/sync_example.mjs');

test('each example watches what the other pushed', async () => {
  const pyWatch = watcher(python, [py, 'watch', '--channel', 'stubs', '--limit', '4']);
  const nodeWatch = watcher('node', [js, 'watch', '--channel', 'stubs', '--limit', '4']);
  const tail = watcher(process.env.SYNCCTL_BIN, ['tail', 'stubs', '--from', '0', '--limit', '4', '--server', env.SYNC_SERVER]);
  await new Promise((r) => setTimeout(r, 500));
  const fromPy = run(python, [py, 'push', '--channel', 'stubs', '--count', '2']);
  const fromNode = run('node', [js, 'push', '--channel', 'stubs', '--count', '2']);
  assert.deepEqual(fromPy.map((a) => a.status), ['accepted', 'accepted']);
  assert.deepEqual(fromNode.map((a) => a.serverVersion), [3, 4]);
  const ids = [...fromPy, ...fromNode].map((a) => a.patchId);
  for (const seen of [await pyWatch, await nodeWatch, await tail]) {
    assert.deepEqual(seen.map((p) => p.id), ids);
    assert.deepEqual(seen.map((p) => Number(p.serverVersion)), [1, 2, 3, 4]);
    assert.equal(seen[2].data.properties.name, 'from node 0');
    assert.equal(seen[0].data.properties.name, 'from python 0');
  }
});

test('syncctl push, changes and info', async () => {
  const ctl = (args, input) => spawnSync(process.env.SYNCCTL_BIN, [...args, '--server', env.SYNC_SERVER],
    { encoding: 'utf8', input, timeout: 20000 });
  const one = ctl(['push', 'ctl', '--op', 'create_node', '--id', 'c1', '--node-id', 'n1', '--data', '{"label":"Person","properties":{"name":"Ada"}}']);
  assert.equal(one.status, 0, one.stderr);
  assert.deepEqual(JSON.parse(one.stdout), { patchId: 'c1', status: 'accepted', serverVersion: 1 });
  const lines = ['{"id":"c2","op":"set_property","targetType":"node","targetId":"n1","propertyKey":"age","propertyValue":36}',
    '{"id":"c3","op":"delete_node","nodeId":"ghost"}'].join('\n');
  const many = ctl(['push', 'ctl'], lines);
  assert.equal(many.status, 3, 'a rejected patch makes the exit status 3');
  const acks = many.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(acks.map((a) => a.status), ['accepted', 'rejected']);
  assert.equal(acks[1].code, 'not_found');
  const changes = ctl(['changes', 'ctl', '--from', '0']);
  assert.equal(changes.status, 0);
  assert.deepEqual(changes.stdout.trim().split('\n').map((l) => JSON.parse(l).id), ['c1', 'c2']);
  const info = JSON.parse(ctl(['info', 'ctl']).stdout);
  assert.equal(info.headVersion, 2);
  assert.equal(info.conflictPolicy, 'last_writer_wins');
  const bad = ctl(['push', 'ctl'], '{not json');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /line 1/);
  const help = spawnSync(process.env.SYNCCTL_BIN, ['tail', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--from/);
});
