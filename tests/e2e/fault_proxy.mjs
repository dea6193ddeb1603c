// A TCP proxy for fault tests: listens on a free port of 127.0.0.1 and
// forwards each connection to a target, until told to misbehave:
//
//   delay(ms)    every chunk is held `ms` before it is passed on, both ways
//                (order kept), on open connections and new ones;
//   blackhole()  nothing is passed on either way and nothing more is read: the
//                peers see silence (no FIN, no RST; their writes pile up in
//                the kernel's buffers). New connections are accepted and held
//                silent the same way. Their TCP stacks still acknowledge what
//                reaches them: this is a peer that hangs, not a cable pulled;
//   cut()        every open connection is reset (RST) on both sides;
//   heal()       back to plain forwarding (no delay; what a blackhole held is
//                passed on, and any end or reset it held back with it).
//
// `connections` is the number of open connection pairs.
import net from 'node:net';

const HIGH_WATER = 1 << 20;  // bytes held per direction before reading pauses

export class FaultProxy {
  constructor(targetPort, targetHost) {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.delayMs = 0;
    this.holes = false;
    this.pairs = new Set();
    this.accepted = 0;
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.accept(s));
  }

  // Resolves to a proxy listening on a free port of 127.0.0.1.
  static async start(targetPort, targetHost = '127.0.0.1') {
    const p = new FaultProxy(targetPort, targetHost);
    await new Promise((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.server.address().port;
    return p;
  }

  get connections() { return this.pairs.size; }
  hostPort() { return `127.0.0.1:${this.port}`; }

  delay(ms) {
    this.delayMs = ms;
  }

  blackhole() {
    this.holes = true;
    for (const pair of this.pairs) {
      pair.client.pause();
      pair.upstream.pause();
    }
  }

  cut() {
    for (const pair of [...this.pairs]) this.reset(pair);
  }

  heal() {
    this.delayMs = 0;
    this.holes = false;
    for (const pair of [...this.pairs]) {
      for (const d of pair.directions) this.pump(d);
    }
  }

  async close() {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }

  accept(client) {
    this.accepted++;
    client.pause();  // explicitly: a 'data' listener must not start it flowing
    const upstream = net.connect({ port: this.targetPort, host: this.targetHost, allowHalfOpen: true });
    upstream.pause();
    const pair = { client, upstream, directions: [], closed: 0, done: false };
    pair.directions.push(this.direction(pair, client, upstream), this.direction(pair, upstream, client));
    this.pairs.add(pair);
    for (const d of pair.directions) {
      d.src.setNoDelay(true);
      d.src.on('error', () => {});  // a reset shows up as 'close' without 'end'
      d.src.on('close', () => {
        d.srcClosed = true;
        if (++pair.closed === 2) {  // both sides are gone: nothing left to pass on
          pair.done = true;
          this.pairs.delete(pair);
          for (const x of pair.directions) clearTimeout(x.timer);
          return;
        }
        // Pass on what it sent, then its end or its reset (held while blackholed).
        this.pump(d);
      });
    }
    upstream.once('connect', () => {
      if (!this.holes) {
        client.resume();
        upstream.resume();
      }
    });
  }

  // One way of a pair: chunks from src wait in `queue` until due, then go to
  // dst; then src's end (FIN) or, if src closed without one, a reset.
  direction(pair, src, dst) {
    const d = { pair, src, dst, queue: [], bytes: 0, timer: null, ended: false, endSent: false, srcClosed: false };
    src.on('data', (chunk) => {
      d.queue.push({ chunk, due: Date.now() + this.delayMs });
      d.bytes += chunk.length;
      if (d.bytes >= HIGH_WATER) src.pause();
      this.pump(d);
    });
    src.on('end', () => {
      d.ended = true;
      this.pump(d);
    });
    dst.on('drain', () => this.pump(d));
    return d;
  }

  pump(d) {
    if (this.holes || d.pair.done || d.timer) return;
    const now = Date.now();
    while (d.queue.length > 0 && d.queue[0].due <= now) {
      const { chunk } = d.queue.shift();
      d.bytes -= chunk.length;
      if (!d.dst.destroyed) d.dst.write(chunk);
    }
    if (d.queue.length > 0) {
      d.timer = setTimeout(() => {
        d.timer = null;
        this.pump(d);
      }, d.queue[0].due - now);
      return;
    }
    if (d.ended) {
      if (!d.endSent && !d.dst.destroyed) d.dst.end();
      d.endSent = true;
    } else if (d.srcClosed) {
      this.reset(d.pair);
    } else if (d.bytes < HIGH_WATER && !d.dst.writableNeedDrain && !d.src.destroyed) {
      d.src.resume();
    } else {
      d.src.pause();  // resumed on dst's 'drain'
    }
  }

  reset(pair) {
    if (pair.done) return;
    pair.done = true;
    this.pairs.delete(pair);
    for (const d of pair.directions) clearTimeout(d.timer);
    for (const s of [pair.client, pair.upstream]) {
      if (s.destroyed) continue;
      // libuv cannot reset a socket it is shutting down (after end()): it
      // refuses, and the handle would never close, which hangs node at exit.
      // Such a socket is closed plainly.
      if (s.writableEnded) s.destroy();
      else s.resetAndDestroy();
    }
  }
}
