// Writers for fault tests: they keep sending patches (create_node, each with
// a fresh id) through a gRPC Session or a WebSocket of sync-bridge, a few in
// flight at a time. Every attempt is recorded with its answer: `accepted` /
// `ignored` with a version settle the patch; a rejection `unavailable`, or
// the stream ending before the answer (the patch is then in doubt), puts it
// back in line to be sent again with the same id, after a reconnect if need
// be. fault_checks.mjs then holds what they were told against the stored log.
import grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { grpcPatch, jsonPatch } from './fault_grpc.mjs';
import { now, waitFor } from './fault_probes.mjs';

// A patch's life: attempts [{sentAt, answeredAt, outcome, code, version}],
// with outcome accepted | ignored | rejected | in-doubt; `final` once
// accepted or ignored.
class Writer {
  constructor(name, channel, { window = 4, interval = 30 } = {}) {
    this.name = name;
    this.channel = channel;
    this.window = window;
    this.interval = interval;
    this.patches = new Map();   // id -> record
    this.resend = [];           // ids to send again, in order
    this.outstanding = new Map();  // id -> attempt on the current connection
    this.events = [];           // {at, what, code}: stream ends, unavailable answers
    this.violations = [];       // answers no server should give
    this.connected = false;
    this.connecting = false;
    this.nextConnect = 0;
    this.connectTimes = [];     // ms from a connection attempt to its first answer
    this.producing = true;
    this.running = false;
    this.n = 0;
    this.gen = 0;               // the current connection; what an older one says is stale
    this.holdUntil = 0;         // after an `unavailable`, sending waits a moment
  }

  start() {
    this.running = true;
    this.timer = setInterval(() => this.tick(), this.interval);
    return this;
  }

  stop() {
    this.running = false;
    this.producing = false;
    clearInterval(this.timer);
    this.disconnect();
  }

  tick() {
    if (!this.running) return;
    if (!this.connected) {
      if (!this.connecting && now() >= this.nextConnect) {
        this.connecting = true;
        this.connectStarted = now();
        this.gen++;
        this.connect(this.gen);
      }
      return;
    }
    if (now() < this.holdUntil) return;
    let fresh = 1;  // at most one new patch per tick
    while (this.outstanding.size < this.window) {
      let id = this.resend.shift();
      if (id === undefined) {
        if (!this.producing || fresh-- <= 0) break;
        id = `${this.name}-${++this.n}`;
        this.patches.set(id, { id, n: this.n, attempts: [], final: null });
      }
      const attempt = { sentAt: now(), gen: this.gen };
      this.patches.get(id).attempts.push(attempt);
      this.outstanding.set(id, attempt);
      this.sendPatch(id, this.patches.get(id).n);
    }
  }

  // The connection answered (opened, or failed).
  connectAnswered(gen) {
    if (gen !== this.gen || !this.connecting) return;
    this.connecting = false;
    this.connectTimes.push(now() - this.connectStarted);
  }

  opened(gen) {
    if (gen !== this.gen) return;
    this.connectAnswered(gen);
    this.connected = true;
  }

  // An answer for `id`: {status: accepted|ignored|rejected, version, code}.
  answer(gen, id, status, version, code) {
    const attempt = this.outstanding.get(id);
    if (gen !== this.gen || !attempt) {
      this.violations.push(`${this.name}: an answer for ${id} that was not in flight (${status})`);
      return;
    }
    this.outstanding.delete(id);
    Object.assign(attempt, { answeredAt: now(), outcome: status, version, code });
    const rec = this.patches.get(id);
    if (status === 'accepted' || status === 'ignored') {
      if (rec.final && rec.final.version !== version) {
        this.violations.push(`${this.name}: ${id} was ${rec.final.status} at ${rec.final.version}, then ${status} at ${version}`);
      }
      if (status === 'accepted' && rec.final) this.violations.push(`${this.name}: ${id} accepted twice`);
      rec.final ??= { status, version, at: attempt.answeredAt };
    } else if (status === 'rejected' && code === 'unavailable') {
      this.events.push({ at: attempt.answeredAt, what: 'unavailable ack', sentAt: attempt.sentAt });
      this.resend.push(id);
      this.holdUntil = attempt.answeredAt + 200;
    } else {
      this.violations.push(`${this.name}: ${id} ${status} ${code}`);
      rec.final ??= { status, version, at: attempt.answeredAt };
    }
  }

  // The stream ended: whatever was in flight is in doubt and goes again.
  ended(gen, what, code) {
    if (gen !== this.gen) return;
    const at = now();
    this.connectAnswered(gen);
    this.events.push({ at, what, code });
    this.connected = false;
    this.nextConnect = at + 200;
    const doubtful = [...this.outstanding.entries()].sort((a, b) => a[1].sentAt - b[1].sentAt);
    for (const [id, attempt] of doubtful) {
      Object.assign(attempt, { answeredAt: at, outcome: 'in-doubt', code });
      this.resend.push(id);
    }
    this.outstanding.clear();
    this.resend.sort((a, b) => this.patches.get(a).n - this.patches.get(b).n);
  }

  // Stops making new patches; resolves once every patch is settled
  // (accepted or ignored), resending as needed.
  async settle(ms = 30000) {
    this.producing = false;
    try {
      await waitFor(() => this.resend.length === 0 && this.outstanding.size === 0 &&
        [...this.patches.values()].every((p) => p.final), ms, `${this.name} to settle`);
    } catch (e) {
      const t = now();
      const unsettled = [...this.patches.values()].filter((p) => !p.final);
      const show = (p) => `${p.id} [${p.attempts.map((a) => `sent ${Math.round(t - a.sentAt)} ms ago: ` +
        `${a.outcome ?? 'no answer'}${a.code ? ` ${a.code}` : ''}`).join('; ')}]`;
      throw new Error(`${e.message}: ${unsettled.length} unsettled (${unsettled.slice(0, 3).map(show).join(', ')}), ` +
        `${this.outstanding.size} in flight, connected ${this.connected}; last events: ` +
        `${JSON.stringify(this.events.slice(-4).map((x) => ({ ...x, at: Math.round(t - x.at) })))}`);
    }
  }

  accepted() { return [...this.patches.values()].filter((p) => p.final?.status === 'accepted').length; }

  // id -> version of every patch settled so far.
  settledVersions() {
    return new Map([...this.patches.values()].filter((p) => p.final).map((p) => [p.id, p.final.version]));
  }

  // The longest wait for an answer (ack or end of stream), over answered
  // attempts and those still in flight, and for a connection to answer.
  longestWait() {
    let ms = 0;
    const t = now();
    for (const p of this.patches.values()) {
      for (const a of p.attempts) ms = Math.max(ms, (a.answeredAt ?? t) - a.sentAt);
    }
    const connect = Math.max(0, ...this.connectTimes, this.connecting ? t - this.connectStarted : 0);
    return { answer: Math.round(ms), connect: Math.round(connect) };
  }

  // Attempts sent at or after `from` and answered before `to`.
  attemptsBetween(from, to) {
    const out = [];
    for (const p of this.patches.values()) {
      for (const a of p.attempts) if (a.sentAt >= from && a.answeredAt !== undefined && a.answeredAt < to) out.push({ id: p.id, ...a });
    }
    return out;
  }

  // Rejected `unavailable` means nothing was stored: a patch later found
  // `ignored` must have been stored by an attempt whose outcome was unknown.
  falseRejections() {
    const out = [];
    for (const p of this.patches.values()) {
      if (p.final?.status !== 'ignored') continue;
      const before = p.attempts.filter((a) => a.outcome !== 'ignored');
      if (before.length > 0 && before.every((a) => a.outcome === 'rejected')) {
        out.push(`${p.id}: rejected ${before.map((a) => a.code).join(',')}, yet stored at ${p.final.version}`);
      }
    }
    return out;
  }
}

// Writes through a gRPC Session.
export class SessionWriter extends Writer {
  constructor(client, channel, name = 'grpc', opts) {
    super(name, channel, opts);
    this.client = client;
  }

  connect(gen) {
    const call = this.client.Session();
    this.call = call;
    let done = false;
    const end = (what, code) => {
      if (done) return;
      done = true;
      this.ended(gen, what, code);
    };
    call.on('data', (m) => {
      if (m.kind === 'opened') this.opened(gen);
      else if (m.kind === 'ack') {
        const a = m.ack;
        this.answer(gen, a.patchId, a.status.toLowerCase(), a.serverVersion ?? 0, a.code);
      }
    });
    call.on('error', (e) => end('stream failed', grpc.status[e.code] ?? e.code));
    call.on('end', () => end('stream ended', 'OK'));
    call.write({ open: { channel: this.channel, noHistory: true, clientId: this.name } });
  }

  sendPatch(id, n) {
    this.call.write({ patch: grpcPatch(id, this.name, `${this.name}-n${n}`, n) });
  }

  disconnect() {
    this.connected = false;
    this.call?.cancel();
  }
}

// Writes through a /sync WebSocket of sync-bridge.
export class WsWriter extends Writer {
  constructor(bridgeUrl, channel, name = 'ws', opts) {
    super(name, channel, opts);
    this.bridgeUrl = bridgeUrl;
  }

  connect(gen) {
    const ws = new WebSocket(`${this.bridgeUrl}/sync?channel=${this.channel}&since=head`);
    this.ws = ws;
    this.lastError = null;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'sync_state') {
        if (!this.connected) this.opened(gen);
      } else if (m.type === 'patch_response') {
        const a = m.payload;
        this.answer(gen, a.patchId, a.status, a.serverVersion, a.code);
      } else if (m.type === 'error') {
        this.lastError = m.payload.code;
        this.events.push({ at: now(), what: 'error frame', code: `${m.payload.code}: ${m.payload.message}` });
        // Before a close 1013, or alone after a Push whose outcome is
        // unknown: then the bridge keeps the socket and says how many
        // patches went unanswered, not which (acks of earlier ones may still
        // wait for their version's turn). Like a client that cannot tell,
        // start over if the socket stays open: reconnect and resend all that
        // is unanswered (what was stored comes back `ignored`).
        if (m.payload.code === 'unavailable') {
          setTimeout(() => {
            if (ws.readyState === WebSocket.OPEN) ws.terminate();
          }, 1000);
        }
      }
    });
    ws.on('close', (code) => this.ended(gen, 'socket closed', `${code}${this.lastError ? ` ${this.lastError}` : ''}`));
    ws.on('error', () => {});
  }

  sendPatch(id, n) {
    this.ws.send(JSON.stringify({ type: 'patch', payload: jsonPatch(id, this.name, `${this.name}-n${n}`, n) }));
  }

  disconnect() {
    this.connected = false;
    this.ws?.terminate();
  }
}
