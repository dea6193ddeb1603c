// churn.mjs's JSON line and its checks, from what the observer saw and what
// the workers reported. Only joins and leaves that happened in the measured
// time [start, stop] count: the ramp's are left out, and the drain after
// stop is only there so that the last ones have a chance to be seen.
//
// The JSON line: joinSeenMs (socket open -> the observer saw the member;
// joinSeenVia says how: presence_join, or a new member in a whole list),
// joinSeenFromConnectMs (from `new WebSocket`), joinSeenFromConnectedAtMs
// (from syncd's connectedAt), syncStateMs (open -> the socket's first
// sync_state: the bridge has read its history and made it a member),
// syncStateToConnectedAtMs (from then to syncd's connectedAt: the member's
// way from the bridge to syncd's presence),
// leaveSeenMs (close() -> seen), unseenJoins / unseenLeaves (never seen
// by the end of the drain), what the observer and the churning sockets
// received and sent per second, and checks.

function percentiles(values) {
  if (values.length === 0) return { count: 0 };
  const v = Float64Array.from(values).sort();
  const at = (q) => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)];
  const r = (x) => Math.round(x * 10) / 10;
  return { count: v.length, p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(v[v.length - 1]), min: r(v[0]) };
}

// r: { o, start, stop, opens, closes, synced, seen, left, obs, observerAtStart,
//   workerStats, workerProblems, workerCount }, as collected by churn.mjs.
// Returns the JSON line's object and the failed checks (empty: all passed).
export function report(r) {
  const { o, start, stop, opens, closes, synced, seen, left, obs, observerAtStart, workerStats, workerProblems } = r;
  const measured = (stop - start) / 1000;
  const joinMs = [], fromConnectMs = [], fromConnectedAtMs = [], syncStateMs = [], syncStateToConnectedAtMs = [];
  const via = {};
  let unseenJoins = 0;
  const unseenSamples = [];
  const closedAt = new Map(closes.map(([id, t]) => [id, t]));
  for (const [clientId, started, opened] of opens) {
    if (opened < start || opened > stop) continue;
    if (synced.has(clientId)) syncStateMs.push(synced.get(clientId) - opened);
    const s = seen.get(clientId);
    if (!s) {
      unseenJoins++;
      if (unseenSamples.length < 5) unseenSamples.push({ clientId, livedMs: Math.round((closedAt.get(clientId) ?? stop) - opened) });
      continue;
    }
    joinMs.push(s.at - opened);
    fromConnectMs.push(s.at - started);
    if (s.connectedAt) fromConnectedAtMs.push(s.at - s.connectedAt);
    if (s.connectedAt && synced.has(clientId)) syncStateToConnectedAtMs.push(s.connectedAt - synced.get(clientId));
    via[s.via] = (via[s.via] || 0) + 1;
  }
  const leaveMs = [];
  let unseenLeaves = 0;
  for (const [clientId, t] of closes) {
    if (t < start || t > stop) continue;
    const l = left.get(clientId);
    if (l === undefined) { if (seen.has(clientId)) unseenLeaves++; continue; }  // never seen joining: not a leave to see
    leaveMs.push(l - t);
  }
  const sum = (key) => workerStats.reduce((acc, s) => acc + s[key], 0);
  const merge = (key, list = workerStats) => list.reduce((acc, s) => {
    for (const [k, v] of Object.entries(s[key])) acc[k] = (acc[k] || 0) + v;
    return acc;
  }, {});
  const perSec = (x) => Math.round(x / measured);
  const observerFrames = {};
  for (const [k, v] of Object.entries(obs.frames)) observerFrames[k] = v - (observerAtStart.frames[k] || 0);
  const churners = {
    opened: sum('opened'), openedPerSec: perSec(sum('opened')), updatesSentPerSec: perSec(sum('updatesSent')),
    updatesSkipped: sum('updatesSkipped'), framesInPerSec: Object.fromEntries(Object.entries(merge('frames')).map(([k, v]) => [k, perSec(v)])),
    bytesInPerSec: perSec(sum('bytesIn')),
    // from the first connect to the end, not only the measured time:
    errors: merge('errors', workerProblems), unexpectedCloses: workerProblems.reduce((a, p) => a + p.unexpectedCloses, 0),
    closeCodes: merge('closeCodes', workerProblems), connectErrors: workerProblems.reduce((a, p) => a + p.connectErrors, 0),
  };
  const failures = [];
  if (joinMs.length === 0) failures.push('no join was seen');
  if (unseenJoins > 0) failures.push(`${unseenJoins} joins never seen by the observer`);
  if (unseenLeaves > 0) failures.push(`${unseenLeaves} leaves never seen by the observer`);
  if (Object.keys(churners.errors).length > 0) failures.push(`error frames: ${JSON.stringify(churners.errors)}`);
  if (obs.errors > 0) failures.push(`${obs.errors} error frames or unparsable frames at the observer`);
  if (churners.unexpectedCloses > 0) failures.push(`${churners.unexpectedCloses} sockets closed by the bridge`);
  if (churners.connectErrors > 0) failures.push(`${churners.connectErrors} failed connects`);
  if (workerStats.length !== r.workerCount || workerProblems.length !== r.workerCount) failures.push('a worker did not report');
  if (obs.closed !== null) failures.push(`the observer was closed (${obs.closed})`);
  const out = {
    channel: o.channel, connections: o.connections, rate: o.rate, lifetimeS: o.lifetime, subscribe: o.subscribe,
    measuredS: Math.round(measured * 10) / 10,
    joinSeenMs: percentiles(joinMs), joinSeenVia: via, unseenJoins, unseenSamples, syncStateMs: percentiles(syncStateMs),
    syncStateToConnectedAtMs: percentiles(syncStateToConnectedAtMs),
    joinSeenFromConnectMs: percentiles(fromConnectMs), joinSeenFromConnectedAtMs: percentiles(fromConnectedAtMs),
    leaveSeenMs: percentiles(leaveMs), unseenLeaves,
    observer: { framesPerSec: Object.fromEntries(Object.entries(observerFrames).map(([k, v]) => [k, perSec(v)])), bytesPerSec: perSec(obs.bytes - observerAtStart.bytes), membersMax: obs.membersMax },
    churners, checks: failures.length === 0 ? 'ok' : failures,
  };
  return { out, failures };
}
