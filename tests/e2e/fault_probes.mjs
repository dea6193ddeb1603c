// Waiting, and one-off probes of a server under fault: is it ready (HTTP
// /readyz), healthy (gRPC health), taking patches, serving history? Each
// probe answers within a bound of its own, so a server that hangs shows up
// as a timeout, not as a test that hangs.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import grpc from '@grpc/grpc-js';
import { grpcPatch, unary } from './fault_grpc.mjs';

export const now = () => performance.now();
export const ms = (x) => `${Math.round(x)} ms`;

// Resolves once `pred()` holds; rejects after `ms`.
export async function waitFor(pred, ms, what, every = 50) {
  const deadline = now() + ms;
  while (!pred()) {
    if (now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// Polls `probe` every `every` ms until `pred(value)`; resolves to
// {value, at} or rejects after `ms`.
export async function pollUntil(probe, pred, ms, what, every = 100) {
  const deadline = now() + ms;
  let value;
  for (;;) {
    value = await probe();
    if (pred(value)) return { value, at: now() };
    if (now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(value)}`);
    await sleep(every);
  }
}

// GET on a connection of its own; resolves to the status code, or `error` /
// `timeout`.
export const httpStatus = (url, timeoutMs = 3000) => new Promise((resolve) => {
  const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
    res.resume();
    resolve(res.statusCode);
  });
  req.on('timeout', () => { req.destroy(); resolve('timeout'); });
  req.on('error', () => resolve('error'));
});

// The health service's answer for `service`: SERVING, NOT_SERVING, ... or
// `error <code>` when the call fails.
export async function healthOf(client, service = '') {
  try {
    return (await unary(client, 'Check', { service }, 3000)).status;
  } catch (e) {
    return `error ${e.code}`;
  }
}

// Pushes a fresh patch to `channel` every `every` ms until one is accepted;
// resolves to the time it was (performance.now()). Each attempt has a
// deadline, so a stuck call counts as a failed attempt.
export async function acceptedPush(client, channel, ms = 30000, every = 100) {
  const deadline = now() + ms;
  let last = '';
  for (let k = 0; ; k++) {
    const id = `probe-${Date.now()}-${k}`;
    try {
      const res = await unary(client, 'Push', { channel, patches: [grpcPatch(id, 'probe', `pn-${id}`, k)] }, 3000);
      const ack = res.acks[0];
      if (ack.status === 'ACCEPTED') return now();
      last = `${ack.status} ${ack.code ?? ''}`;
    } catch (e) {
      last = `${grpc.status[e.code] ?? e.code}: ${e.details}`;
    }
    if (now() > deadline) throw new Error(`no patch accepted within ${ms} ms; last answer: ${last}`);
    await sleep(every);
  }
}

// Reads `channel` from version 0 the two streaming ways, a Watch and a
// Session, and resolves once each has delivered version 1 (history read from
// the log); rejects with the first failure, or after `ms`.
export function catchUpReads(client, channel, ms = 10000) {
  // Reads `call` until `hasVersion1` says a message holds version 1.
  const read = (what, call, hasVersion1) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { call.cancel(); reject(new Error(`${what} from 0: no history within the bound`)); }, ms);
    call.on('data', (x) => {
      if (!hasVersion1(x)) return;
      clearTimeout(timer);
      call.cancel();
      resolve();
    });
    call.on('error', (e) => {
      clearTimeout(timer);
      if (e.code !== grpc.status.CANCELLED) reject(new Error(`${what} from 0 failed: ${grpc.status[e.code]} ${e.details}`));
    });
  });
  const watch = read('Watch', client.Watch({ channel, fromVersion: 0 }), (p) => p.serverVersion === 1);
  const call = client.Session();
  const session = read('Session', call, (m) => m.kind === 'syncState' && (m.syncState.patches ?? []).some((p) => p.serverVersion === 1));
  call.write({ open: { channel, fromVersion: 0, clientId: 'catch-up' } });
  return Promise.all([watch, session]);
}
