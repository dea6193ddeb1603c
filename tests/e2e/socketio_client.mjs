// Clients for the Socket.IO dialect of sync-bridge (Engine.IO v4 / Socket.IO
// v5 at /socket.io/): a recording wrapper of socket.io-client, a raw Engine.IO
// client on a bare WebSocket (for frames socket.io-client would never send,
// and for a reader that stops reading), and a TCP proxy whose target can be
// switched and whose connections can be cut (a load balancer in miniature).
import net from 'node:net';
import WebSocket from 'ws';
import { io } from 'socket.io-client';

// Resolves once `pred()` holds; rejects after `ms` with `what` and `detail()`.
export async function waitUntil(pred, ms, what, detail = () => '', waiters = null) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}${detail() ? `; ${detail()}` : ''}`);
    await new Promise((r) => {
      const t = setTimeout(r, Math.min(left, 50));
      waiters?.push(() => { clearTimeout(t); r(); });
    });
  }
}

// A socket.io-client socket that records what the server sends.
//
//   events      [name, ...args] of every server event, in arrival order
//   changes     every change of every `sync:changes`, in arrival order
//   own         version -> the change as the others must see it, for each of
//               this socket's changes acked success (and not duplicate)
//   problems    breaches of the wire contract seen in passing
//   connects    socket.recovered at each connect
//   transports  the first transport of each Engine.IO session, then each upgrade
export class Sio {
  // `options` go to io(); websocket only unless `defaultTransports` is set.
  constructor(url, { defaultTransports = false, ...options } = {}) {
    this.socket = io(url, {
      ...(defaultTransports ? {} : { transports: ['websocket'] }),
      forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 500, randomizationFactor: 0, timeout: 5000,
      ...options,
    });
    this.events = [];
    this.changes = [];
    this.own = new Map();
    this.problems = [];
    this.connects = [];
    this.disconnects = [];
    this.connectErrors = [];
    this.transports = [];
    this.channels = [];  // joined, in order
    this.resetAt = new Map();  // channel -> the version of its last sync:reset
    this.waiters = [];
    const s = this.socket;
    s.onAny((name, ...args) => {
      this.events.push([name, ...args]);
      if (name === 'sync:reset') this.resetAt.set(args[0]?.channel, args[0]?.timestamp);
      if (name === 'sync:changes') {
        if (!Array.isArray(args[0])) this.problems.push(`sync:changes without an array: ${JSON.stringify(args).slice(0, 200)}`);
        else this.changes.push(...args[0]);
        // A channel's state after a sync:reset (inserts at the reset's
        // version) has no place in the log to recover from: it may come
        // without an offset. Everything else carries one.
        const snapshot = Array.isArray(args[0]) && args[0].length > 0 &&
          args[0].every((c) => this.resetAt.get(c?.channel) === c?.timestamp);
        if (!snapshot && typeof args.at(-1) !== 'string') this.problems.push(`sync:changes without an offset last: ${JSON.stringify(args).slice(0, 200)}`);
      }
      this.wake();
    });
    s.on('connect', () => { this.connects.push(s.recovered); this.wake(); });
    s.on('disconnect', (reason) => { this.disconnects.push(reason); this.wake(); });
    s.on('connect_error', (err) => { this.connectErrors.push(err); this.wake(); });
    s.io.on('open', () => {
      const engine = s.io.engine;
      this.transports.push(engine.transport.name);
      engine.on('upgrade', (t) => { this.transports.push(t.name); this.wake(); });
      this.wake();
    });
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  waitFor(pred, ms = 15000, what = 'a condition') {
    return waitUntil(() => pred(this), ms, what, () => `events: ${JSON.stringify(this.events.slice(-3)).slice(0, 600)}; ` +
      `connected ${this.socket.connected}; disconnects ${JSON.stringify(this.disconnects)}; ` +
      `connect errors ${JSON.stringify(this.connectErrors.map((e) => [e.message, e.data]))}`, this.waiters);
  }

  // Resolves once connected; rejects with the connect_error if one comes first.
  async connected(ms = 10000) {
    await this.waitFor(() => this.socket.connected || this.connectErrors.length > 0, ms, 'connect');
    if (!this.socket.connected) throw this.connectErrors[0];
    return this;
  }

  // The first connect_error (the socket must not connect).
  async refused(ms = 10000) {
    await this.waitFor(() => this.connectErrors.length > 0 || this.socket.connected, ms, 'a connect_error');
    if (this.socket.connected) throw new Error('connected, but a connect_error was expected');
    return this.connectErrors[0];
  }

  // Emits `event` with `payload` and resolves to the ack's first argument.
  emit(event, payload, ms = 15000) {
    return this.socket.timeout(ms).emitWithAck(event, payload);
  }

  async join(payload, ms) {
    const ack = await this.emit('sync:join', typeof payload === 'string' ? { channel: payload } : payload, ms);
    if (ack?.success) this.channels.push(ack.channel);
    return ack;
  }

  // Sends one change or an array; records the accepted ones in `own` under
  // their versions (as the other sockets must see them). Resolves to the ack.
  async send(changes, ms) {
    const ack = await this.emit('sync:change', changes, ms);
    const list = Array.isArray(changes) ? changes : [changes];
    const acks = Array.isArray(changes) ? ack : [ack];
    if (Array.isArray(acks)) {
      list.forEach((c, i) => {
        const a = acks[i];
        if (a?.success && !a.duplicate && a.changeId === c.id) {
          this.own.set(a.timestamp, { ...c, timestamp: a.timestamp, channel: c.channel ?? this.channels[0] });
        }
      });
    }
    return ack;
  }

  // Versions of `channel` this socket knows: its own accepted changes and
  // the changes it received, sorted.
  knownVersions(channel) {
    return this.allChanges(channel).map((c) => c.timestamp);
  }

  // Its own accepted changes and the received ones of `channel`, by version.
  allChanges(channel) {
    return [...[...this.own.values()].filter((c) => c.channel === channel), ...this.changes.filter((c) => c.channel === channel)]
      .sort((x, y) => x.timestamp - y.timestamp);
  }

  received(channel) { return this.changes.filter((c) => channel === undefined || c.channel === channel); }
  eventsNamed(name) { return this.events.filter((e) => e[0] === name); }
  close() { this.socket.disconnect(); }
}

// One Socket.IO packet (the payload of an Engine.IO message), decoded:
// {type, nsp, id, data}.
export function decodeSio(str) {
  let i = 0;
  const type = Number(str[i++]);
  if (type === 5 || type === 6) i = str.indexOf('-', i) + 1;  // binary attachments: not expected
  let nsp = '/';
  if (str[i] === '/') {
    const end = str.indexOf(',', i);
    nsp = end < 0 ? str.slice(i) : str.slice(i, end);
    i = end < 0 ? str.length : end + 1;
  }
  let j = i;
  while (j < str.length && str[j] >= '0' && str[j] <= '9') j++;
  const id = j > i ? Number(str.slice(i, j)) : null;
  const data = j < str.length ? JSON.parse(str.slice(j)) : undefined;
  return { type, nsp, id, data };
}

// An Engine.IO v4 client over the WebSocket transport, frame by frame. It
// answers pings while it reads; pause() stops reading from the TCP socket
// (the server's writes back up in the kernel, then in the server).
export class RawEio {
  static async open(port, query = '') {
    const r = new RawEio(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket${query}`);
    await r.waitFor(() => r.handshake || r.closed, 10000, 'the Engine.IO open packet');
    if (!r.handshake) throw new Error(`closed before the open packet: ${JSON.stringify(r.closed)}`);
    return r;
  }

  constructor(url) {
    this.ws = new WebSocket(url);
    this.handshake = null;  // the open packet's JSON
    this.packets = [];      // decoded Socket.IO packets
    this.frames = 0;
    this.pings = 0;
    this.closed = null;     // {code, reason}
    this.errors = [];
    this.waiters = [];
    this.nextId = 1;
    this.ws.on('message', (data, isBinary) => {
      this.frames++;
      if (isBinary) this.errors.push('a binary frame');
      else this.onFrame(data.toString());
      this.wake();
    });
    this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; this.wake(); });
    this.ws.on('error', (e) => { this.errors.push(String(e)); this.wake(); });
  }

  onFrame(text) {
    switch (text[0]) {
      case '0': this.handshake = JSON.parse(text.slice(1)); break;
      case '2': this.pings++; if (this.ws.readyState === WebSocket.OPEN) this.ws.send(`3${text.slice(1)}`); break;
      case '4': this.packets.push(decodeSio(text.slice(1))); break;
      case '1': case '6': break;
      default: this.errors.push(`unexpected Engine.IO frame ${text.slice(0, 40)}`);
    }
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  waitFor(pred, ms = 15000, what = 'a condition') {
    return waitUntil(() => pred(this), ms, what, () => `${this.frames} frames, last packets ${JSON.stringify(this.packets.slice(-2)).slice(0, 400)}; ` +
      `closed ${JSON.stringify(this.closed)}; errors ${JSON.stringify(this.errors.slice(-3))}`, this.waiters);
  }

  send(text) { this.ws.send(text); }

  // CONNECT to the default namespace; resolves to the server's CONNECT or
  // CONNECT_ERROR packet.
  async connect(auth) {
    const before = this.packets.length;
    this.send(auth === undefined ? '40' : `40${JSON.stringify(auth)}`);
    await this.waitFor(() => this.packets.slice(before).some((p) => p.type === 0 || p.type === 4), 10000, 'CONNECT');
    return this.packets.slice(before).find((p) => p.type === 0 || p.type === 4);
  }

  // An EVENT with an ack id; resolves to the ack's first argument.
  async emit(event, payload, ms = 15000) {
    const id = this.nextId++;
    this.send(`42${id}${JSON.stringify([event, payload])}`);
    await this.waitFor(() => this.packets.some((p) => p.type === 3 && p.id === id), ms, `the ack of ${event}`);
    return this.packets.find((p) => p.type === 3 && p.id === id).data[0];
  }

  events(name) { return this.packets.filter((p) => p.type === 2 && p.data?.[0] === name).map((p) => p.data.slice(1)); }
  changes() { return this.events('sync:changes').flatMap((args) => args[0]); }
  pause() { this.ws._socket.pause(); }
  resume() { this.ws._socket.resume(); }
  close() { this.ws.terminate(); }
}

// A TCP proxy on a free port of 127.0.0.1 to `target` (a port): cut() resets
// every open connection, `refusing` makes it drop new ones at once, and
// `target` may be changed for new connections.
export class Switch {
  static async start(target) {
    const s = new Switch(target);
    await new Promise((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', resolve);
    });
    s.port = s.server.address().port;
    s.http = `http://127.0.0.1:${s.port}`;
    return s;
  }

  constructor(target) {
    this.target = target;
    this.refusing = false;
    this.pairs = new Set();
    this.accepted = 0;
    this.server = net.createServer((client) => {
      client.on('error', () => {});
      if (this.refusing) { client.resetAndDestroy(); return; }
      this.accepted++;
      const upstream = net.connect(this.target, '127.0.0.1');
      upstream.on('error', () => {});
      const pair = { client, upstream };
      this.pairs.add(pair);
      const end = () => { this.pairs.delete(pair); client.destroy(); upstream.destroy(); };
      client.on('close', end);
      upstream.on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  cut() {
    for (const { client, upstream } of [...this.pairs]) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
  }

  async close() {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}
