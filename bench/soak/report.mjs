// The verdict line, the fault table and the JSON report.
import { writeFileSync } from 'node:fs';
import { KINDS } from './faults.mjs';
import { median } from './util.mjs';

// Time from a fault to the first `accepted` ack of a patch sent after it
// (an ack that arrives just after a kill may be for a commit made before).
export function firstAckAfter(acks, at) {
  let lo = 0;
  let hi = acks.length;
  while (lo < hi) {  // acks are in time order: the first one at or after `at`
    const mid = (lo + hi) >> 1;
    if (acks[mid].t < at) lo = mid + 1; else hi = mid;
  }
  for (let i = lo; i < acks.length; i++) if (acks[i].status === 'accepted' && acks[i].sentAt >= at) return acks[i].t - at;
  return null;
}

// The longest time without any accepted ack from the fault until it had
// healed and 2 s more: how long writes stalled.
export function longestStall(acks, from, to) {
  let prev = from;
  let worst = 0;
  for (const a of acks) {
    if (a.t < from || a.status !== 'accepted') continue;
    if (a.t > to) break;
    worst = Math.max(worst, a.t - prev);
    prev = a.t;
  }
  return Math.max(worst, to - prev);
}

const fmt = (xs) => {
  const ok = xs.filter((x) => x !== null);
  const lost = xs.length - ok.length;
  if (!ok.length) return lost ? 'never' : '-';
  return `${Math.round(median(ok))}/${Math.max(...ok)}${lost ? ` (+${lost} never)` : ''}`;
};

// `endAt`: when writers stopped making new patches; no stall is counted after it.
export function faultRows(done, acks, t0, endAt = Infinity) {
  return KINDS.map((kind) => {
    const fs = done.filter((f) => f.kind === kind);
    return {
      kind,
      count: fs.length,
      injectedAt: fs.map((f) => `${((f.at - t0) / 1000).toFixed(1)}${f.target === null ? '' : `#${f.target}`}`),
      readyMs: fs.map((f) => f.readyMs),
      readyAfterHealMs: fs.map((f) => f.readyAfterHealMs ?? null),
      allReadyMs: fs.map((f) => f.allReadyMs),
      firstAckMs: fs.map((f) => firstAckAfter(acks, f.at)),
      stallMs: fs.map((f) => longestStall(acks, f.at, Math.min(endAt, f.at + (f.allReadyMs ?? 0) + 2000))),
    };
  });
}

export function printTable(rows, totals) {
  const head = ['fault', 'count', 'injected at (s, #target)', 'syncd ready ms med/max', 'of which after restart',
    '+bridges ms', 'first accept ms', 'write stall ms'];
  // The first few injection times only; the JSON report has them all.
  const at = (xs) => (xs.length > 6 ? `${xs.slice(0, 6).join(' ')} …` : xs.join(' ')) || '-';
  const body = rows.map((r) => [r.kind, String(r.count), at(r.injectedAt), fmt(r.readyMs),
    fmt(r.readyAfterHealMs), fmt(r.allReadyMs),
    fmt(r.firstAckMs), fmt(r.stallMs)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  console.log('(ms median/max. ready: from the fault until both syncd answer /readyz 200; +bridges: and both bridges\' /readyz;'
    + ' of which after restart: from PostgreSQL accepting connections again, or the killed process started again;'
    + ' first accept: until a patch sent after the fault is acked accepted; write stall: the longest time without any'
    + ' accepted ack from the fault until 2 s after it healed)');
  console.log(Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', '));
}

export function verdictLine(violations, summary) {
  if (!violations.length) return `soak: PASS ${summary}`;
  const first = violations.slice(0, 3).map((v) => `(${v.check}) ${v.what}`).join('; ');
  return `soak: FAIL: ${violations.length} violation(s): ${first}${violations.length > 3 ? '; ...' : ''}`;
}

export function writeReport(file, report) {
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}
