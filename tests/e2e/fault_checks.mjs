// Checks for fault tests, over writers (fault_writers.mjs) and readers
// (fault_readers.mjs): what they saw against the log as stored; what writers
// were told, and when, around a fault; how long they waited; whether a
// process exited. Checks return lists of problems rather than assert, so that
// a test reports every problem of a run at once.
import { psql } from './pg_cluster.mjs';
import { ms, waitFor } from './fault_probes.mjs';

// The channel's head and its log [{v, id}], in one REPEATABLE READ transaction.
async function readLog(url, channel) {
  const out = await psql(url, `
    BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
    SELECT coalesce((SELECT head FROM channels WHERE name = '${channel}'), 0);
    SELECT coalesce(json_agg(json_build_object('v', p.version, 'id', p.patch_id) ORDER BY p.version), '[]')
      FROM patches p JOIN channels c ON c.id = p.channel_id WHERE c.name = '${channel}';
    COMMIT;`);
  const [head, rows] = out.trim().split('\n');
  return { head: Number(head), rows: JSON.parse(rows) };
}

// Compares the stored log of `channel` with what writers and readers saw;
// resolves to a list of problems (empty when all is well). `ackedBefore`:
// id -> version of patches acknowledged before the fault.
export async function checkLog(url, channel, { writers, readers = [], ackedBefore = new Map() }) {
  const problems = [];
  const { head, rows } = await readLog(url, channel);
  const versions = rows.map((r) => r.v);
  if (head !== rows.length || versions.some((v, i) => v !== i + 1)) {
    const gap = versions.findIndex((v, i) => v !== i + 1);
    problems.push(`the log is not 1..head (head ${head}, ${rows.length} rows${gap >= 0 ? `, version ${gap + 1} missing` : ''})`);
  }
  const stored = new Map(rows.map((r) => [r.id, r.v]));
  const written = new Set();
  for (const w of writers) {
    problems.push(...w.violations, ...w.falseRejections().map((s) => `${w.name}: ${s}`));
    for (const p of w.patches.values()) {
      written.add(p.id);
      if (!p.final) problems.push(`${w.name}: ${p.id} never settled`);
      else if (stored.get(p.id) !== p.final.version) {
        problems.push(`${w.name}: ${p.id} was ${p.final.status} at ${p.final.version}, stored at ${stored.get(p.id)}`);
      }
    }
  }
  for (const [id, v] of ackedBefore) {
    if (stored.get(id) !== v) problems.push(`${id}, acked at ${v} before the fault, is stored at ${stored.get(id)}`);
  }
  for (const r of rows) if (!written.has(r.id)) problems.push(`version ${r.v} holds ${r.id}, which no writer sent`);
  for (const r of readers) {
    problems.push(...r.violations);
    try {
      await r.caughtUp(head);
    } catch (e) {
      problems.push(e.message);
      continue;
    }
    for (const { v, id } of rows) {
      if (r.ids[v] !== id) {
        problems.push(`${r.name} saw ${r.ids[v]} at version ${v}, the log holds ${id}`);
        break;
      }
    }
  }
  return { problems, head };
}

// Answers from writers in [from, to): how many, and what kind.
export function answersBetween(writers, from, to) {
  const attempts = writers.flatMap((w) => w.attemptsBetween(from, to).map((a) => ({ writer: w.name, ...a })));
  const events = writers.flatMap((w) => w.events.filter((e) => e.at >= from && e.at < to).map((e) => ({ writer: w.name, ...e })));
  return { attempts, events };
}

// Streams of `readers` opened at or after `from` that failed (ended with
// anything but a clean end): reads that should have succeeded.
export function failedReadsSince(readers, from) {
  return readers.flatMap((r) => r.ends.filter((e) => e.openedAt >= from && e.why !== 'OK')
    .map((e) => `${r.name}: a stream opened ${Math.round(e.openedAt - from)} ms after the database was back failed: ${e.why}`));
}

// Problems if any of `procs` (from startSyncd / startBridge) has exited.
export function exited(procs) {
  return procs.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null)
    .map((p) => `a process exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.output().slice(-3000)}`);
}

// Ids and versions of every patch acknowledged so far.
export function ackedSoFar(writers) {
  return new Map(writers.flatMap((w) => [...w.settledVersions()]));
}

// The longest any patch or connection may wait for an answer, in ms.
const ANSWER_BOUND = 10000;

// Each writer has `n` more patches accepted than when this was called.
export async function progress(writers, n, bound, what) {
  const base = writers.map((w) => w.accepted());
  await waitFor(() => writers.every((w, i) => w.accepted() >= base[i] + n), bound,
    `${n} more patches accepted from each writer ${what} (${writers.map((w) => `${w.name}: ${w.accepted()}`).join(', ')})`);
}

// Problems if a writer waited longer than `bound` for an answer to a patch,
// or for a connection attempt to be answered; prints the longest waits.
export function hangs(writers, bound = ANSWER_BOUND, connectBound = bound) {
  const problems = [];
  for (const w of writers) {
    const wait = w.longestWait();
    console.log(`# ${w.name}: longest wait for an answer ${ms(wait.answer)}, for a connection ${ms(wait.connect)}`);
    if (wait.answer > bound) problems.push(`${w.name} waited ${ms(wait.answer)} for an answer to a patch (bound ${ms(bound)})`);
    if (wait.connect > connectBound) problems.push(`${w.name} waited ${ms(wait.connect)} for a connection to answer (bound ${ms(connectBound)})`);
  }
  return problems;
}

// The first moment after `from` a writer was told its patches were not
// stored (an `unavailable` ack, an error frame, its stream ending), or null.
export function firstRefusal(writers, from) {
  const at = writers.flatMap((w) => w.events.filter((e) => e.at >= from).map((e) => e.at));
  return at.length ? Math.min(...at) : null;
}

// The median and longest time from sending to `accepted`, over attempts
// sent in [from, to).
export function ackLatency(writers, from = 0, to = Infinity) {
  const t = writers.flatMap((w) => [...w.patches.values()].flatMap((p) => p.attempts))
    .filter((a) => a.outcome === 'accepted' && a.sentAt >= from && a.sentAt < to).map((a) => a.answeredAt - a.sentAt)
    .sort((a, b) => a - b);
  return { n: t.length, median: t[Math.floor(t.length / 2)] ?? NaN, max: t.at(-1) ?? NaN };
}
