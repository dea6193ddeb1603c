// bench/etcd.sh's summary: its runs (one JSON object a line, alternately
// syncd and etcd) paired in order, and per pair the ratio syncd / etcd of
// each figure, with the median, min and max over the pairs.
//
//   node bench/etcd-summary.mjs RUNS.jsonl
import { readFileSync } from "node:fs";

const runs = readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const r2 = (x) => Math.round(x * 100) / 100;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => ({ median: r2(median(xs)), min: r2(Math.min(...xs)), max: r2(Math.max(...xs)) });
// The servers' CPU seconds over a run: syncd and PostgreSQL, or etcd.
const servers_s = (r) => (r.target === "syncd" ? r.cpu.syncd_s + r.cpu.postgres_s : r.cpu.etcd_s);

function pairs(command) {
  const mine = runs.filter((r) => r.result.command === command);
  const out = [];
  for (let i = 0; i + 1 < mine.length; i += 2) out.push([mine[i], mine[i + 1]]);
  return out;
}

// push: writes acknowledged once durable. CPU per write over the whole run
// (warm-up included, as its CPU is).
const push = pairs("push").map(([a, b]) => {
  const cpu_ms = (r) => (1e6 * servers_s(r)) / r.result.accepted_total;
  return {
    syncd_per_s: a.result.accepted_per_s, etcd_per_s: b.result.accepted_per_s,
    throughput: a.result.accepted_per_s / b.result.accepted_per_s,
    p50: a.result.ack_ms.p50 / b.result.ack_ms.p50, p99: a.result.ack_ms.p99 / b.result.ack_ms.p99,
    syncd_cpu_ms: cpu_ms(a), etcd_cpu_ms: cpu_ms(b), cpu: cpu_ms(a) / cpu_ms(b),
    syncd_alone_us: (1e6 * a.cpu.syncd_s) / a.result.accepted_total,
  };
});

// watch-fanout: at a fixed offered rate both deliver the same count when
// they keep up, so deliveries/s is about 1 by construction; the capacity
// figure is deliveries per second of the servers' CPU.
const watch = pairs("watch-fanout").map(([a, b]) => {
  const per_cpu_s = (r) => r.result.deliveries / Math.max(servers_s(r), 0.01);
  return {
    syncd_per_s: a.result.deliveries_per_s, etcd_per_s: b.result.deliveries_per_s,
    throughput: a.result.deliveries_per_s / b.result.deliveries_per_s,
    p50: a.result.latency_ms.p50 / b.result.latency_ms.p50, p99: a.result.latency_ms.p99 / b.result.latency_ms.p99,
    syncd_per_cpu_s: per_cpu_s(a), etcd_per_cpu_s: per_cpu_s(b), per_cpu_s: per_cpu_s(a) / per_cpu_s(b),
  };
});

const verdict = (s, goal) =>
  s.median >= goal ? (s.min >= goal ? "met" : "met at the median, not in every pair") : "not met";
const push_throughput = spread(push.map((p) => p.throughput));
const watch_per_cpu = spread(watch.map((p) => p.per_cpu_s));
console.log(JSON.stringify({
  summary: "syncd / etcd per pair: throughput above 1, syncd ahead; latency and CPU below 1, syncd lower",
  push: push.length === 0 ? null : {
    pairs: push.length,
    syncd_accepted_per_s: push.map((p) => p.syncd_per_s), etcd_puts_per_s: push.map((p) => p.etcd_per_s),
    throughput_ratio: push_throughput,
    ack_p50_ratio: spread(push.map((p) => p.p50)), ack_p99_ratio: spread(push.map((p) => p.p99)),
    servers_cpu_ms_per_1000_writes: { syncd_and_postgres: push.map((p) => r2(p.syncd_cpu_ms)),
                                      etcd: push.map((p) => r2(p.etcd_cpu_ms)) },
    cpu_per_write_ratio: spread(push.map((p) => p.cpu)),
    syncd_alone_cpu_us_per_write: spread(push.map((p) => p.syncd_alone_us)),
    target_1_5x: verdict(push_throughput, 1.5),
    target_syncd_40us_per_write: median(push.map((p) => p.syncd_alone_us)) <= 40 ? "met" : "not met",
  },
  watch_fanout: watch.length === 0 ? null : {
    pairs: watch.length,
    syncd_deliveries_per_s: watch.map((p) => p.syncd_per_s), etcd_deliveries_per_s: watch.map((p) => p.etcd_per_s),
    deliveries_per_s_ratio: spread(watch.map((p) => p.throughput)),
    latency_p50_ratio: spread(watch.map((p) => p.p50)), latency_p99_ratio: spread(watch.map((p) => p.p99)),
    deliveries_per_server_cpu_s: { syncd_and_postgres: watch.map((p) => Math.round(p.syncd_per_cpu_s)),
                                   etcd: watch.map((p) => Math.round(p.etcd_per_cpu_s)) },
    deliveries_per_server_cpu_s_ratio: watch_per_cpu,
    target_2x_per_cpu_s: verdict(watch_per_cpu, 2),
  },
  other_cpu_s: runs.map((r) => r.cpu.other_s),
}, null, 1));
