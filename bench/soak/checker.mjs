// The history checker. It reads the log in one REPEATABLE READ transaction
// (one consistent snapshot) and holds what every client recorded against it:
//   (a) a patch acked accepted (or ignored, or acked on /crdt) is stored
//       exactly once, in its channel, at the version the ack named;
//   (b) each channel's versions are 1..head with no gap;
//   (c) a patch rejected for a reason other than unavailable/internal is not
//       stored; deliberately invalid patches are never accepted, and valid
//       ones are never rejected for validation;
//   (d) each reader received versions start+1, start+2, ... across all its
//       reconnects: no gap, no duplicate;
//   (e) each reader ended at its channel's head, and the patch it got at
//       each version is the one the log holds there.
// (d) also covers the sockets of /sync writers, which the bridge promises
// every version after the head they joined at, own patches as acks in place.
// Plus: every stored patch was sent by a writer, and every writer settled
// all its patches before the end.
import { isRetryable } from './patches.mjs';

export async function snapshot(pg) {
  const r = await pg.psql(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT 'c', name, head FROM channels;
SELECT 'p', c.name, p.version, p.patch_id FROM patches p JOIN channels c ON c.id = p.channel_id ORDER BY 2, 3;
COMMIT;`);
  if (!r.ok) throw new Error(`reading the log failed: ${r.out}`);
  const heads = new Map();     // channel -> head
  const logs = new Map();      // channel -> [{version, pid}] in version order
  const where = new Map();     // `${channel}\t${pid}` -> [versions]
  for (const line of r.stdout.split('\n')) {
    if (!line) continue;
    const [kind, channel, a, b] = line.split('\t');
    if (kind === 'c') heads.set(channel, Number(a));
    if (kind === 'p') {
      if (!logs.has(channel)) logs.set(channel, []);
      logs.get(channel).push({ version: Number(a), pid: b });
      const key = `${channel}\t${b}`;
      if (!where.has(key)) where.set(key, []);
      where.get(key).push(Number(a));
    }
  }
  return { heads, logs, where };
}

// Answers {violations: [{check, what, t?}], stats}; `faultBefore(t)` names
// the last fault injected before time t, for context.
export function check({ snap, rec, readers, writers, channels, faultBefore }) {
  const violations = [];
  const add = (check, what, t) => violations.push({ check, what: t ? `${what} [${faultBefore(t)}]` : what, ...(t ? { t } : {}) });
  const { heads, logs, where } = snap;

  // (a) and (c), from every answer any writer got.
  for (const a of rec.acks) {
    const key = `${a.channel}\t${a.id}`;
    const stored = where.get(key) ?? [];
    const sent = rec.sent.get(a.id);
    if (a.status === 'accepted' || a.status === 'ignored' || a.status === 'acked') {
      if (stored.length === 0) add('a', `${a.id} (${a.writer}) acked ${a.status} at ${a.channel}@${a.version} but is not in the log`, a.t);
      else if (stored.length > 1) add('a', `${a.id} is stored ${stored.length} times (${stored.join(',')})`, a.t);
      else if (stored[0] !== a.version) add('a', `${a.id} (${a.writer}) acked ${a.status} at ${a.version} but stored at ${stored[0]}`, a.t);
      if (sent?.invalid && a.status !== 'acked') add('c', `${a.id} (${a.writer}, ${sent.op}) is invalid on purpose but was ${a.status} at ${a.version}`, a.t);
    } else if (a.status === 'rejected' && !isRetryable(a.code)) {
      if (stored.length) add('c', `${a.id} (${a.writer}) rejected ${a.code} but stored at ${stored.join(',')}`, a.t);
      if (sent && !sent.invalid) add('c', `${a.id} (${a.writer}, ${sent.op}) is valid but was rejected ${a.code}: ${a.reason ?? ''}`, a.t);
    } else if (a.status !== 'rejected') {
      add('a', `${a.id} got an ack with status "${a.status}"`, a.t);
    }
  }

  // (b) gap-free versions per channel, and nothing stored that nobody sent.
  for (const channel of channels) {
    const head = heads.get(channel) ?? 0;
    const log = logs.get(channel) ?? [];
    if (log.length !== head) add('b', `${channel}: head ${head} but ${log.length} patches stored`);
    const bad = log.findIndex((p, i) => p.version !== i + 1);
    if (bad >= 0) add('b', `${channel}: version ${bad + 1} is missing (next stored: ${log[bad].version})`);
    for (const p of log) {
      if (!rec.sent.has(p.pid)) add('b', `${channel}@${p.version}: ${p.pid} was stored but no writer sent it`);
    }
  }

  // Every writer settled what it sent; a /sync writer's socket also saw
  // every version once, in order.
  for (const w of writers) {
    for (const a of w.anomalies ?? []) add('d', `${w.name} (${w.kind}, ${w.channel}): ${a.what}`, a.t);
    if (w.pending.size) add('a', `${w.name} still has ${w.pending.size} unanswered patch(es) at the end: ${[...w.pending.keys()].slice(0, 3).join(', ')}`);
  }

  // (d) and (e), per reader.
  for (const r of readers) {
    const head = heads.get(r.channel) ?? 0;
    const log = logs.get(r.channel) ?? [];
    const start = r.conns[0]?.from ?? 0;
    for (let i = 0; i < r.versions.length; i++) {
      const want = start + i + 1;
      if (r.versions[i] !== want) {
        const conn = [...r.conns].reverse().find((c) => c.index <= i);
        const kind = r.versions[i] < want ? 'duplicate' : 'gap';
        add('d', `${r.name} (${r.kind}, ${r.channel}): ${kind}: got version ${r.versions[i]} where ${want} was due`
          + ` (received #${i}, on connection #${r.conns.indexOf(conn)} to ${conn?.target} from ${conn?.from})`, r.times[i]);
        break;  // the rest of the sequence is shifted: one report per reader
      }
    }
    if (r.last !== head) add('e', `${r.name} (${r.kind}, ${r.channel}) ended at ${r.last}, the head is ${head}`);
    for (let i = 0; i < r.versions.length; i++) {
      const v = r.versions[i];
      const stored = log[v - 1];
      if (!stored || stored.pid !== r.pids[i]) {
        add('e', `${r.name} (${r.kind}, ${r.channel}): version ${v} came as ${r.pids[i]} but the log holds ${stored?.pid ?? 'nothing'}`, r.times[i]);
        break;
      }
    }
    // What only the /crdt reader can see (a pull answered short, a live update
    // naming another patch than the pull did); gaps and duplicates are above.
    for (const a of r.anomalies.filter((x) => !x.seq)) add('d', `${r.name} (${r.kind}, ${r.channel}): ${a.what}`, a.t);
  }

  return violations;
}
