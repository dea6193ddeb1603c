// Writers: each sends patches with unique ids over one transport, keeps
// the ones not yet answered (pending), and after any disconnect resends
// them on the next connection. A duplicate is answered `ignored` with its
// original version: that is how a patch whose outcome was unknown (the
// connection died before its ack) is settled.
import WebSocket from 'ws';
import { ackStatus, grpc, syncClient, toProtoPatch } from './grpc.mjs';
import { isRetryable, wire } from './patches.mjs';
import { backoff, log, parseFrame } from './util.mjs';

class Writer {
  // targets: addresses (gRPC) or ws:// base URLs (bridges), tried in turn.
  constructor({ name, kind, channel, targets, gen, rec, r, rate, window }) {
    Object.assign(this, { name, kind, channel, targets, gen, rec, r, rate, window });
    this.pending = new Map();   // id -> patch, in the order first sent
    this.inflight = new Set();  // ids sent on the current connection, unanswered
    this.connected = false;
    this.generating = true;     // false once the soak winds down: only resends then
    this.closed = false;
    this.epoch = 0;             // one per connection; stale callbacks compare it
    this.attempt = 0;
    this.target = r.int(targets.length);
    this.stats = { connects: 0, disconnects: 0, errors: 0, lastError: '' };
    this.anomalies = [];        // order problems the transport promises not to have
  }

  anomaly(what) {
    if (this.anomalies.length < 50) this.anomalies.push({ t: Date.now(), what });
    log(`!! ${this.name} (${this.channel}): ${what}`);
  }

  start() {
    this.connect();
    this.timer = setInterval(() => this.tick(), 1000 / this.rate);
  }

  connect() {
    if (this.closed) return;
    this.open(this.targets[this.target], ++this.epoch);
  }

  tick() {
    if (!this.connected || !this.generating || this.pending.size >= this.window) return;
    const p = this.gen.next((elementId) => this.references(elementId));
    this.pending.set(p.id, p);
    this.rec.noteSent(this.name, this.channel, p);
    this.send(p);
  }

  references(elementId) {
    for (const p of this.pending.values()) if (p.edgeId === elementId || p.targetId === elementId) return true;
    return false;
  }

  send(p) {
    p.sentAt = Date.now();
    this.inflight.add(p.id);
    this.transmit(p);
  }

  // The transport is ready: everything still pending goes again, in order.
  opened(epoch) {
    if (epoch !== this.epoch || this.closed) return;
    this.connected = true;
    this.connectedAt = Date.now();
    this.stats.connects++;
    for (const p of this.pending.values()) if (!this.inflight.has(p.id)) this.send(p);
  }

  // The connection is gone: unanswered patches stay pending, and we
  // reconnect (to the next target) after a backoff.
  lost(epoch, why) {
    if (epoch !== this.epoch) return;
    this.epoch++;
    this.inflight.clear();
    this.stats.disconnects++;
    this.stats.lastError = String(why).slice(0, 160);
    // The backoff starts over only after a connection that lasted: one
    // dropped at once must not turn into a tight reconnect loop.
    if (this.connected && Date.now() - this.connectedAt > 2000) this.attempt = 0;
    this.connected = false;
    this.shutdown();
    if (this.closed) return;
    this.target = (this.target + 1) % this.targets.length;
    setTimeout(() => this.connect(), backoff(this.attempt++, this.r));
  }

  answered(id, status, version, code, reason) {
    this.rec.noteAck(this.name, this.channel, id, status, version, code, reason, this.pending.get(id)?.sentAt);
    this.inflight.delete(id);
    const p = this.pending.get(id);
    if (!p) return;  // a second answer for a patch already settled (a resend)
    if (status === 'rejected' && isRetryable(code)) {
      // Nothing was decided: send it again a little later on this connection.
      const epoch = this.epoch;
      p.retries = (p.retries ?? 0) + 1;
      setTimeout(() => {
        if (epoch === this.epoch && this.connected && this.pending.has(id) && !this.inflight.has(id)) this.send(p);
      }, backoff(p.retries, this.r, 200, 2000));
      return;
    }
    this.pending.delete(id);
    if (status !== 'rejected') this.gen.confirmed(p);
  }

  close() {
    this.closed = true;
    clearInterval(this.timer);
    this.epoch++;
    this.shutdown();
  }

  summary() {
    return { name: this.name, kind: this.kind, channel: this.channel, pending: this.pending.size,
      anomalies: this.anomalies.length, ...this.stats };
  }
}

// gRPC Session (bidi): open without history, then patches and their acks.
export class SessionWriter extends Writer {
  open(address, epoch) {
    const call = syncClient(address).Session();
    this.call = call;
    call.on('data', (m) => {
      if (m.kind === 'opened') this.opened(epoch);
      else if (m.kind === 'ack' && epoch === this.epoch) {
        const a = m.ack;
        this.answered(a.patchId, ackStatus(a.status), a.serverVersion, a.code, a.reason);
      } else if (m.kind === 'error') {
        this.stats.errors++;
        this.stats.lastError = `${m.error.code}: ${m.error.message}`;
      }
    });
    call.on('error', (e) => this.lost(epoch, e.message));
    call.on('end', () => this.lost(epoch, 'stream ended'));
    call.write({ open: { channel: this.channel, noHistory: true, clientId: this.name } });
    // The server closes a session silent for 60 s.
    this.beat = setInterval(() => call.write({ heartbeat: {} }), 15000);
  }

  transmit(p) { this.call.write({ patch: toProtoPatch(wire(p)) }); }

  shutdown() {
    clearInterval(this.beat);
    this.call?.cancel();
    this.call = null;
  }
}

// gRPC Push (unary): one call at a time, each carrying what is queued.
export class PushWriter extends Writer {
  open(address, epoch) {
    this.address = address;
    this.queue = [];
    this.busy = false;
    setImmediate(() => this.opened(epoch));
  }

  transmit(p) {
    this.queue.push(p);
    this.pump();
  }

  pump() {
    if (this.busy || !this.queue.length || !this.connected) return;
    const epoch = this.epoch;
    const batch = this.queue.splice(0, 50);
    this.busy = true;
    const deadline = new Date(Date.now() + 10000);
    syncClient(this.address).Push({ channel: this.channel, patches: batch.map((p) => toProtoPatch(wire(p))) },
      { deadline }, (err, res) => {
        if (epoch !== this.epoch) return;
        this.busy = false;
        if (err || (res.acks ?? []).length !== batch.length) {
          // The outcome of the whole batch is unknown: resend it elsewhere.
          this.stats.errors++;
          return this.lost(epoch, err ? `${grpc.status[err.code]}: ${err.details}` : 'ack count mismatch');
        }
        for (const a of res.acks) this.answered(a.patchId, ackStatus(a.status), a.serverVersion, a.code, a.reason);
        this.pump();
      });
  }

  shutdown() {
    this.queue = [];
    this.busy = false;
  }
}

// The JSON WebSocket protocol on a bridge's /sync. Its socket also reads:
// the bridge promises each socket every version from the head it joined at,
// once and in order, its own patches as accepted acks in their place and
// everyone else's as broadcasts; that is checked too.
export class SyncWsWriter extends Writer {
  open(base, epoch) {
    const ws = new WebSocket(`${base}/sync?channel=${this.channel}&since=head`);
    this.ws = ws;
    let joined = false;
    let seen = 0;  // the last version this socket has been given
    const follow = (v, what) => {
      if (v !== seen + 1) this.anomaly(`socket to ${base}: ${what} for version ${v} after ${seen}`);
      seen = Math.max(seen, v);
    };
    ws.on('message', (data) => {
      if (epoch !== this.epoch) return;
      const m = parseFrame(data);
      if (m.type === 'sync_state' && !joined) {
        joined = true;
        seen = m.payload.version;
        this.opened(epoch);
      } else if (m.type === 'patch_broadcast') {
        follow(m.payload.serverVersion, 'broadcast');
      } else if (m.type === 'patch_response') {
        const a = m.payload;
        if (a.status === 'accepted') follow(a.serverVersion, `accepted ack of ${a.patchId}`);
        this.answered(a.patchId, a.status, a.serverVersion, a.code, a.reason);
      } else if (m.type === 'error') {
        this.stats.errors++;
        this.stats.lastError = `${m.payload.code}: ${m.payload.message}`;
        // A failed Push leaves its patches unanswered ("resend them"); which
        // ones is not said, so every unanswered one goes again (a copy that
        // was already stored is answered `ignored`).
        if (isRetryable(m.payload.code) && /resend/.test(m.payload.message)) {
          const ids = [...this.inflight];
          this.inflight.clear();
          setTimeout(() => {
            if (epoch !== this.epoch) return;
            for (const id of ids) if (this.pending.has(id) && !this.inflight.has(id)) this.send(this.pending.get(id));
          }, backoff(1, this.r, 200));
        }
      }
    });
    ws.on('close', (code, reason) => this.lost(epoch, `closed ${code} ${reason}`));
    ws.on('error', () => {});
    this.beat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.ping(), 15000);  // pings count as life
  }

  transmit(p) { this.ws.send(JSON.stringify({ type: 'patch', payload: wire(p) })); }

  shutdown() {
    clearInterval(this.beat);
    this.ws?.terminate();
    this.ws = null;
  }
}

// The CRDT relay on a bridge's /crdt. Its acks name no update, so a writer
// has one update in flight at a time (window 1) and matches the next ack
// to it; after an error frame the socket is dropped so that no late ack
// can be taken for a later update.
export class CrdtWriter extends Writer {
  constructor(opts) {
    super({ ...opts, window: 1 });
    this.site = opts.gen.site;
  }

  open(base, epoch) {
    const ws = new WebSocket(`${base}/crdt?channel=${this.channel}`);
    this.ws = ws;
    ws.on('message', (data) => {
      if (epoch !== this.epoch) return;
      const m = parseFrame(data);
      if (m.type === 'connected') this.opened(epoch);
      else if (m.type === 'ack') {
        const [id] = this.inflight;
        if (id === undefined) {
          this.stats.errors++;
          this.stats.lastError = `an ack for no update in flight: ${JSON.stringify(m)}`;
          return;
        }
        // /crdt does not say accepted or duplicate: `acked`, checked the same way.
        this.answered(id, 'acked', m.version);
      } else if (m.type === 'error') {
        this.stats.errors++;
        this.stats.lastError = `${m.payload?.code}: ${m.payload?.message}`;
        if (this.inflight.size) this.lost(epoch, `error frame ${m.payload?.code}`);
      }
    });
    ws.on('close', (code, reason) => this.lost(epoch, `closed ${code} ${reason}`));
    ws.on('error', () => {});
    this.beat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.ping(), 15000);  // pings count as life
  }

  transmit(p) {
    this.ws.send(JSON.stringify({ type: 'update', changes: p.data.changes, version: p.crdtVersion,
      siteId: this.site, channel: this.channel }));
  }

  shutdown() {
    clearInterval(this.beat);
    this.ws?.terminate();
    this.ws = null;
  }
}
