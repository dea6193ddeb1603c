// A Prometheus-like scraper for bench/metrics-scrape.sh: GETs each URL
// (syncd's and sync-bridge's /metrics) over a kept-alive connection, and
// checks each answer (200, text format, the process's build_info metric).
//
//   node metrics-scraper.mjs --every 1000 URL...   every URL once a second until SIGTERM
//   node metrics-scraper.mjs --burst 1000 URL...   1000 scrapes of each URL, one after another
//
// Prints one JSON line: per URL the scrapes, failures, bytes of the last
// answer and the time of a scrape (p50, max, ms). Exits 1 if a scrape failed.
import { performance } from 'node:perf_hooks';

const args = process.argv.slice(2);
let every = 0, burst = 0;
const urls = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--every') every = Number(args[++i]);
  else if (args[i] === '--burst') burst = Number(args[++i]);
  else urls.push(args[i]);
}
if (urls.length === 0 || !((every > 0) !== (burst > 0))) {
  console.error('usage: node metrics-scraper.mjs (--every MS | --burst N) URL...');
  process.exit(2);
}

const stats = new Map(urls.map((u) => [u, { scrapes: 0, failures: 0, bytes: 0, ms: [], firstFailure: null }]));

async function scrape(url) {
  const s = stats.get(url);
  const t0 = performance.now();
  try {
    const res = await fetch(url);
    const body = await res.text();
    s.ms.push(performance.now() - t0);
    s.scrapes++;
    s.bytes = body.length;
    const type = res.headers.get('content-type') || '';
    if (res.status !== 200 || !type.startsWith('text/plain') || !/^(syncd|sync_bridge)_build_info\{/m.test(body)) {
      s.failures++;
      s.firstFailure ??= `${res.status} ${type} ${body.slice(0, 200)}`;
    }
  } catch (e) {
    s.scrapes++;
    s.failures++;
    s.firstFailure ??= String(e);
  }
}

function report() {
  const out = {};
  for (const [url, s] of stats) {
    const ms = [...s.ms].sort((a, b) => a - b);
    const at = (q) => (ms.length ? Math.round(ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)] * 100) / 100 : null);
    out[url] = { scrapes: s.scrapes, failures: s.failures, bytes: s.bytes, ms_p50: at(0.5), ms_max: at(1),
      ...(s.firstFailure ? { first_failure: s.firstFailure } : {}) };
  }
  console.log(JSON.stringify(out));
  const failed = [...stats.values()].some((s) => s.failures > 0 || s.scrapes === 0);
  process.exit(failed ? 1 : 0);
}

if (burst > 0) {
  for (const url of urls) {
    for (let i = 0; i < burst; i++) await scrape(url);
  }
  report();
} else {
  let stopping = false;
  process.once('SIGTERM', () => { stopping = true; });
  process.once('SIGINT', () => { stopping = true; });
  let next = performance.now();
  while (!stopping) {
    await Promise.all(urls.map(scrape));
    next += every;
    while (!stopping && performance.now() < next) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, next - performance.now())));
    }
  }
  report();
}
