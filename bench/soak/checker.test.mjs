// The checker and the /crdt reader's stitching on made-up histories:
//   node --test bench/soak/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check } from './checker.mjs';
import { crdtChange, Record } from './patches.mjs';
import { CrdtReader } from './readers.mjs';

// A channel `c` with patches p1..p3 at versions 1..3, acked accepted, one
// rejected invalid patch, and a reader that saw 1..3.
function history() {
  const rec = new Record();
  for (const id of ['p1', 'p2', 'p3', 'bad']) rec.noteSent('w', 'c', { id, op: 'create_node', invalid: id === 'bad' });
  ['p1', 'p2', 'p3'].forEach((id, i) => rec.noteAck('w', 'c', id, 'accepted', i + 1));
  rec.noteAck('w', 'c', 'bad', 'rejected', 3, 'not_found');
  const log = [{ version: 1, pid: 'p1' }, { version: 2, pid: 'p2' }, { version: 3, pid: 'p3' }];
  const where = new Map(log.map((p) => [`c\t${p.pid}`, [p.version]]));
  const reader = { name: 'r', kind: 'T', channel: 'c', last: 3, versions: [1, 2, 3], pids: ['p1', 'p2', 'p3'],
    times: [1, 2, 3], conns: [{ from: 0, index: 0, target: 'x' }], anomalies: [] };
  return { rec, snap: { heads: new Map([['c', 3]]), logs: new Map([['c', log]]), where }, readers: [reader],
    writers: [{ name: 'w', pending: new Map() }], channels: ['c'], faultBefore: () => 'no fault' };
}
const checks = (h) => check(h).map((v) => v.check);

test('a clean history passes', () => assert.deepEqual(check(history()), []));

test('an accepted ack at another version, or missing from the log, is (a)', () => {
  const h = history();
  h.rec.acks[1].version = 5;
  assert.deepEqual(checks(h), ['a']);
  const g = history();
  g.snap.where.delete('c\tp3');
  g.snap.logs.get('c').pop();
  g.snap.heads.set('c', 2);
  g.readers[0].versions.pop();
  g.readers[0].pids.pop();
  g.readers[0].last = 2;
  assert.deepEqual(checks(g), ['a']);
});

test('an ignored ack must name the stored version', () => {
  const h = history();
  h.rec.noteAck('w', 'c', 'p2', 'ignored', 3);
  assert.deepEqual(checks(h), ['a']);
});

test('a gap in the log, or a patch nobody sent, is (b)', () => {
  const h = history();
  h.snap.logs.get('c')[1].version = 4;
  assert.ok(checks(h).includes('b'));
  const g = history();
  g.snap.logs.get('c').push({ version: 4, pid: 'stranger' });
  g.snap.heads.set('c', 4);
  assert.ok(checks(g).includes('b'));
});

test('a rejected patch that is stored, or an invalid one accepted, is (c)', () => {
  const h = history();
  h.snap.where.set('c\tbad', [4]);
  assert.deepEqual(checks(h), ['c']);
  const g = history();
  g.rec.noteAck('w', 'c', 'bad', 'accepted', 3);
  assert.ok(checks(g).includes('c'));
});

test('retryable rejections are not final', () => {
  const h = history();
  h.rec.noteAck('w', 'c', 'p3', 'rejected', 2, 'unavailable');
  assert.deepEqual(check(h), []);
});

test('a reader with a gap or a duplicate is (d); one short of the head or with another patch is (e)', () => {
  const gap = history();
  Object.assign(gap.readers[0], { versions: [1, 3], pids: ['p1', 'p3'] });
  assert.deepEqual(checks(gap), ['d']);
  const dup = history();
  Object.assign(dup.readers[0], { versions: [1, 2, 2, 3], pids: ['p1', 'p2', 'p2', 'p3'], times: [1, 2, 3, 4] });
  assert.deepEqual(checks(dup), ['d']);
  const short = history();
  Object.assign(short.readers[0], { versions: [1, 2], pids: ['p1', 'p2'], last: 2 });
  assert.deepEqual(checks(short), ['e']);
  const wrong = history();
  wrong.readers[0].pids[1] = 'p3';
  assert.deepEqual(checks(wrong), ['e']);
});

test('a writer that never settled a patch is reported', () => {
  const h = history();
  h.writers[0].pending.set('p9', {});
  assert.deepEqual(checks(h), ['a']);
});

// The /crdt reader: `connected` at head 5 after having 2, a pull answered
// with 3..7 while live updates 6, 7, 8 arrive around it.
function crdtReader(last) {
  const r = new CrdtReader({ name: 'cr', kind: 'CrdtReader', channel: 'c', targets: [], rec: new Record(), r: null });
  for (let v = 1; v <= last; v++) r.receive(v, `u${v}`);
  Object.assign(r, { byVersion: new Map(), overlaps: 0, held: [], overlap: null, pullFrom: last, head: 5 });
  return r;
}
const upd = (from, to) => ({ type: 'update', version: to,
  changes: Array.from({ length: to - from + 1 }, (_, i) => crdtChange(`u${from + i}`, from + i, 's')) });

test('crdt: live updates before the pull answer wait, the overlap is taken once', () => {
  const r = crdtReader(2);
  r.onUpdate(upd(6, 6));
  r.onUpdate(upd(3, 7));
  r.onUpdate(upd(7, 7));
  r.onUpdate(upd(8, 8));
  assert.deepEqual(r.versions, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(r.overlaps, 2);
  assert.deepEqual(r.anomalies, []);
});

test('crdt: a live update repeated beyond the overlap is a duplicate', () => {
  const r = crdtReader(2);
  r.onUpdate(upd(3, 7));
  r.onUpdate(upd(7, 7));
  r.onUpdate(upd(7, 7));
  assert.deepEqual(r.versions, [1, 2, 3, 4, 5, 6, 7, 7]);
});

test('crdt: a short pull answer is an anomaly and leaves a gap', () => {
  const r = crdtReader(2);
  r.onUpdate(upd(4, 7));
  assert.equal(r.anomalies.filter((a) => !a.seq).length, 1);
  assert.deepEqual(r.versions, [1, 2, 4, 5, 6, 7]);
});
