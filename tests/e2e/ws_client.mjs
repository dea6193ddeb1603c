// A WebSocket client for tests: records every frame it receives.
import WebSocket from 'ws';

export class Client {
  // `protocols`: offered subprotocols (Sec-WebSocket-Protocol), if any;
  // `options`: the ws package's (headers, ...).
  constructor(url, protocols, options) {
    this.messages = [];
    this.closed = null;  // {code, reason} once closed
    this.ws = new WebSocket(url, protocols ?? [], options);
    this.waiters = [];
    this.ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? { binary: true } : JSON.parse(data.toString()));
      this.wake();
    });
    this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; this.wake(); });
    this.ws.on('error', () => {});
  }

  static async open(url, protocols, options) {
    const c = new Client(url, protocols, options);
    await new Promise((resolve, reject) => {
      c.ws.once('open', resolve);
      c.ws.once('close', (code) => reject(new Error(`closed before open: ${code}`)));
    });
    return c;
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  // Resolves when pred(messages) is true; rejects after `ms`.
  async waitFor(pred, ms = 20000, what = 'a condition') {
    const deadline = Date.now() + ms;
    while (!pred(this.messages, this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.slice(-5))} closed=${JSON.stringify(this.closed)}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, Math.min(left, 200)); });
    }
    return this.messages;
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }
  patch(payload) { this.send({ type: 'patch', payload }); }

  ofType(type) { return this.messages.filter((m) => m.type === type); }
  response(id) { return this.messages.find((m) => m.type === 'patch_response' && m.payload.patchId === id); }
  async ack(id, ms) { await this.waitFor(() => this.response(id), ms, `the response to ${id}`); return this.response(id).payload; }

  // Versions from sync_state pages and broadcasts, in arrival order.
  versions() {
    const out = [];
    for (const m of this.messages) {
      if (m.type === 'sync_state') for (const p of m.payload.patches) out.push(p.serverVersion);
      if (m.type === 'patch_broadcast') out.push(m.payload.serverVersion);
    }
    return out;
  }

  async closedWith(ms = 20000) { await this.waitFor(() => this.closed, ms, 'the socket to close'); return this.closed; }
  close() { this.ws.close(); }
}

export const node = (id, nodeId = `n-${id}`, extra = {}) => ({
  id, timestamp: Date.now(), clientId: 'tester', op: 'create_node', nodeId,
  data: { label: 'Person', properties: { name: id } }, ...extra,
});

export const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
