// bench/compare.sh's summary: its runs (one JSON object a line, with side
// "old" or "new" and the pair they belong to), and per figure each side's
// median and NEW / OLD per pair, as median, min and max.
//
//   node bench/compare-summary.mjs RUNS.jsonl OLD_COMMIT NEW_COMMIT
import { readFileSync } from "node:fs";

const [file, oldCommit, newCommit] = process.argv.slice(2);
const runs = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const r2 = (x) => Math.round(x * 100) / 100;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Each figure from one run, and whether more is better.
const figures = {
  push: {
    accepted_per_s: [(r) => r.result.accepted_per_s, "higher"],
    ack_p50_ms: [(r) => r.result.ack_ms.p50, "lower"],
    ack_p99_ms: [(r) => r.result.ack_ms.p99, "lower"],
    syncd_cpu_us_per_patch: [(r) => (1e6 * r.cpu.syncd_s) / r.result.accepted_total, "lower"],
    postgres_cpu_us_per_patch: [(r) => (1e6 * r.cpu.postgres_s) / r.result.accepted_total, "lower"],
  },
  "watch-fanout": {
    deliveries_per_server_cpu_s: [(r) => r.result.deliveries / Math.max(r.cpu.syncd_s + r.cpu.postgres_s, 0.01), "higher"],
    latency_p50_ms: [(r) => r.result.latency_ms.p50, "lower"],
    latency_p99_ms: [(r) => r.result.latency_ms.p99, "lower"],
  },
};

const out = { old: oldCommit.slice(0, 12), new: newCommit.slice(0, 12), summary: "new / old per pair" };
for (const [command, named] of Object.entries(figures)) {
  const mine = runs.filter((r) => r.command === command);
  const pairs = [...new Set(mine.map((r) => r.pair))].map((p) => [
    mine.find((r) => r.pair === p && r.side === "old"),
    mine.find((r) => r.pair === p && r.side === "new"),
  ]).filter(([a, b]) => a && b);
  if (pairs.length === 0) continue;
  out[command] = { pairs: pairs.length };
  for (const [name, [value, better]] of Object.entries(named)) {
    const ratios = pairs.map(([a, b]) => value(b) / value(a));
    out[command][name] = {
      old: r2(median(pairs.map(([a]) => value(a)))),
      new: r2(median(pairs.map(([, b]) => value(b)))),
      ratio: { median: r2(median(ratios)), min: r2(Math.min(...ratios)), max: r2(Math.max(...ratios)) },
      better,
    };
  }
}
out.other_cpu_s = runs.map((r) => r.cpu.other_s);
console.log(JSON.stringify(out, null, 1));
