// Readers: each follows one channel over one transport and records every
// version it receives, in arrival order, with the patch id. After any
// disconnect it reconnects (to either instance, with backoff) from the last
// version it has, so across reconnects it must see 1, 2, 3, ... exactly once.
import WebSocket from 'ws';
import { syncClient } from './grpc.mjs';
import { patchIdOfChange } from './patches.mjs';
import { backoff, log, parseFrame } from './util.mjs';

class Reader {
  constructor({ name, kind, channel, targets, rec, r }) {
    Object.assign(this, { name, kind, channel, targets, rec, r });
    this.last = 0;          // highest version received
    this.versions = [];     // every version received, in order
    this.pids = [];         // the patch id that came with it
    this.times = [];        // when
    this.conns = [];        // {t, from, target, index, end?, why?}: each connection, where it started and how it ended
    this.anomalies = [];    // protocol surprises seen live (the checker judges the sequence)
    this.connected = false;
    this.closed = false;
    this.epoch = 0;
    this.attempt = 0;
    this.stats = { connects: 0, disconnects: 0, errors: 0, lastError: '' };
  }

  start() { this.connect(); }

  connect() {
    if (this.closed) return;
    const target = this.targets[this.r.int(this.targets.length)];
    this.conns.push({ t: Date.now(), from: this.last, target, index: this.versions.length });
    this.open(target, ++this.epoch, this.last);
  }

  receive(v, pid) {
    v = Number(v);
    if (!this.connected) this.up(this.epoch);
    if (v !== this.last + 1 && this.anomalies.length < 50) {
      const what = v <= this.last ? 'duplicate/backwards' : 'gap';
      this.anomalies.push({ t: Date.now(), seq: true, what: `${what}: got ${v} after ${this.last}` });
      log(`!! ${this.name} (${this.channel}): ${what}: version ${v} after ${this.last}`);
    }
    this.versions.push(v);
    this.pids.push(pid);
    this.times.push(Date.now());
    if (v > this.last) this.last = v;
    this.rec.counts.reads++;
  }

  up(epoch) {
    if (epoch !== this.epoch) return;
    this.connected = true;
    this.stats.connects++;
  }

  lost(epoch, why) {
    if (epoch !== this.epoch) return;
    this.epoch++;
    this.connected = false;
    this.stats.disconnects++;
    this.stats.lastError = String(why).slice(0, 160);
    const conn = this.conns.at(-1);
    if (conn) Object.assign(conn, { end: Date.now(), why: this.stats.lastError, got: this.versions.length - conn.index });
    // The backoff starts over only after a connection that was worth
    // something: one refused at once (1013 while the database is down)
    // must not turn into a tight reconnect loop.
    if (conn && (conn.got > 0 || conn.end - conn.t > 2000)) this.attempt = 0;
    this.shutdown();
    if (!this.closed) setTimeout(() => this.connect(), backoff(this.attempt++, this.r));
  }

  close() {
    this.closed = true;
    this.epoch++;
    this.shutdown();
  }

  summary() {
    return { name: this.name, kind: this.kind, channel: this.channel, last: this.last, received: this.versions.length,
      connections: this.conns.length, anomalies: this.anomalies.length, ...this.stats };
  }
}

// gRPC Watch: every patch after from_version, then live.
export class WatchReader extends Reader {
  open(address, epoch, from) {
    const call = syncClient(address).Watch({ channel: this.channel, fromVersion: from });
    this.call = call;
    call.on('metadata', () => this.up(epoch));
    call.on('data', (p) => { if (epoch === this.epoch) this.receive(p.serverVersion, p.id); });
    call.on('error', (e) => this.lost(epoch, e.message));
    call.on('end', () => this.lost(epoch, 'stream ended'));
  }

  shutdown() {
    this.call?.cancel();
    this.call = null;
  }
}

// gRPC Session used only to read: history pages after from_version, then
// broadcasts.
export class SessionReader extends Reader {
  open(address, epoch, from) {
    const call = syncClient(address).Session();
    this.call = call;
    call.on('data', (m) => {
      if (epoch !== this.epoch) return;
      if (m.kind === 'opened') this.up(epoch);
      else if (m.kind === 'syncState') for (const p of m.syncState.patches ?? []) this.receive(p.serverVersion, p.id);
      else if (m.kind === 'broadcast') this.receive(m.broadcast.serverVersion, m.broadcast.id);
      else if (m.kind === 'error') {
        this.stats.errors++;
        this.stats.lastError = `${m.error.code}: ${m.error.message}`;
      }
    });
    call.on('error', (e) => this.lost(epoch, e.message));
    call.on('end', () => this.lost(epoch, 'stream ended'));
    call.write({ open: { channel: this.channel, fromVersion: from, clientId: this.name } });
    this.beat = setInterval(() => call.write({ heartbeat: {} }), 15000);
  }

  shutdown() {
    clearInterval(this.beat);
    this.call?.cancel();
    this.call = null;
  }
}

// The JSON protocol: /sync?since=<last>.
export class SyncWsReader extends Reader {
  open(base, epoch, from) {
    const ws = new WebSocket(`${base}/sync?channel=${this.channel}&since=${from}`);
    this.ws = ws;
    ws.on('open', () => this.up(epoch));
    ws.on('message', (data) => {
      if (epoch !== this.epoch) return;
      const m = parseFrame(data);
      if (m.type === 'sync_state') for (const p of m.payload.patches) this.receive(p.serverVersion, p.id);
      else if (m.type === 'patch_broadcast') this.receive(m.payload.serverVersion, m.payload.id);
      else if (m.type === 'error') {
        this.stats.errors++;
        this.stats.lastError = `${m.payload.code}: ${m.payload.message}`;
      }
    });
    ws.on('close', (code, reason) => this.lost(epoch, `closed ${code} ${reason}`));
    ws.on('error', () => {});
    this.beat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.ping(), 15000);
  }

  shutdown() {
    clearInterval(this.beat);
    this.ws?.terminate();
    this.ws = null;
  }
}

// The CRDT relay: `connected` gives the head V and live updates follow from
// V+1; what the reader missed (last, V] it asks for with a `pull`, answered
// by one update holding every change after `last`. Live updates that arrive
// before that answer wait; those it already covered (versions in (V, H] of
// an answer up to H) are the one overlap the protocol implies, checked to
// name the same patch, and not counted twice. The CRDT channel holds only
// opaque patches with one change each, so an update with n changes up to
// version H carries versions H-n+1..H.
export class CrdtReader extends Reader {
  open(base, epoch, from) {
    const ws = new WebSocket(`${base}/crdt?channel=${this.channel}`);
    this.ws = ws;
    this.pullFrom = null;   // set while a pull is unanswered
    this.held = [];         // live updates waiting for the pull's answer
    this.overlap = null;    // {from: V, to: H}: versions both the answer and live updates carry
    this.byVersion ??= new Map();
    this.overlaps ??= 0;
    ws.on('message', (data) => {
      if (epoch !== this.epoch) return;
      const m = parseFrame(data);
      if (m.type === 'connected') {
        this.up(epoch);
        this.head = m.version;
        if (m.version < from) this.anomaly(`connected says head ${m.version}, below the ${from} already received`);
        if (m.version > from) {
          this.pullFrom = from;
          ws.send(JSON.stringify({ type: 'pull', version: from, siteId: `reader-${this.name}`, channel: this.channel }));
        }
      } else if (m.type === 'update') {
        this.onUpdate(m);
      } else if (m.type === 'error') {
        this.stats.errors++;
        this.stats.lastError = `${m.payload?.code}: ${m.payload?.message}`;
        if (this.pullFrom !== null) this.lost(epoch, 'error while a pull was unanswered');
      }
    });
    ws.on('close', (code, reason) => this.lost(epoch, `closed ${code} ${reason}`));
    ws.on('error', () => {});
    this.beat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.ping(), 15000);
  }

  anomaly(what) {
    if (this.anomalies.length < 50) this.anomalies.push({ t: Date.now(), what });
    log(`!! ${this.name} (${this.channel}): ${what}`);
  }

  onUpdate(m) {
    const pids = (m.changes ?? []).map(patchIdOfChange);
    const entries = pids.map((pid, i) => ({ v: m.version - pids.length + 1 + i, pid }));
    // The pull's answer: several changes, or one that starts right after `pullFrom`
    // (live updates start after the head, which is above `pullFrom`).
    const isAnswer = this.pullFrom !== null && (pids.length !== 1 || m.version - 1 === this.pullFrom);
    if (this.pullFrom !== null && !isAnswer) {
      this.held.push(entries);
      return;
    }
    if (isAnswer) {
      if (m.version - pids.length !== this.pullFrom) {
        this.anomaly(`pull from ${this.pullFrom} answered with ${pids.length} changes up to ${m.version}`);
      }
      this.pullFrom = null;
      this.overlap = { from: this.head, to: m.version, seen: new Set() };
      for (const e of entries) this.take(e, false);
      for (const held of this.held.splice(0)) for (const e of held) this.take(e, true);
      return;
    }
    for (const e of entries) this.take(e, true);
  }

  take({ v, pid }, live) {
    const o = this.overlap;
    if (live && o && v > o.from && v <= o.to && v <= this.last && !o.seen.has(v)) {
      // Covered by the pull's answer already (once): the same patch or a finding.
      o.seen.add(v);
      this.overlaps++;
      if (this.byVersion.get(v) !== pid) this.anomaly(`version ${v} came as ${pid} live but as ${this.byVersion.get(v)} in the pull`);
      return;
    }
    this.byVersion.set(v, pid);
    this.receive(v, pid);
  }

  shutdown() {
    clearInterval(this.beat);
    this.ws?.terminate();
    this.ws = null;
  }
}
