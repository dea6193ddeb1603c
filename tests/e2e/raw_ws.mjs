// A WebSocket client on a bare TCP socket, for hostile tests: it sends the
// upgrade request byte for byte (bytes a well-behaved client library would
// refuse to send) and reads the server's frames itself.
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export class RawSocket {
  // `head`: the request line and headers after the Host line, as a latin1 string.
  static async open(port, target, extraHeaders = '') {
    const s = new RawSocket();
    await s.connect(port);
    s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`);
    await s.waitFor(() => s.status !== null, 10000, 'the response head');
    return s;
  }

  constructor() {
    this.buf = Buffer.alloc(0);
    this.status = null;   // the HTTP status code of the response
    this.frames = [];     // {opcode, text} of server frames
    this.ended = false;
    this.waiters = [];
  }

  connect(port) {
    return new Promise((resolve, reject) => {
      this.sock = net.connect(port, '127.0.0.1', resolve);
      this.sock.once('error', reject);
      this.sock.on('error', () => {});
      this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); this.wake(); });
      this.sock.on('close', () => { this.ended = true; this.wake(); });
    });
  }

  write(text) { this.sock.write(Buffer.from(text, 'latin1')); }

  // Sends `frame`'s bytes in writes of `size` bytes, each after the last has
  // been handed to the kernel, so the server sees them arrive in pieces.
  async trickle(frame, size) {
    for (let at = 0; at < frame.bytes.length; at += size) {
      await new Promise((resolve) => this.sock.write(frame.bytes.subarray(at, at + size), resolve));
    }
  }

  parse() {
    if (this.status === null) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.status = Number(this.buf.subarray(0, end).toString('latin1').split(' ')[1]);
      this.buf = this.buf.subarray(end + 4);
    }
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0] & 0x0f;
      let len = this.buf[1] & 0x7f;
      let at = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); at = 4; }
      if (len === 127) { if (this.buf.length < 10) return; len = Number(this.buf.readBigUInt64BE(2)); at = 10; }
      if (this.buf.length < at + len) return;
      const payload = this.buf.subarray(at, at + len);
      this.frames.push(opcode === 8
        ? { opcode, code: len >= 2 ? payload.readUInt16BE(0) : 1005, text: payload.subarray(2).toString() }
        : { opcode, text: payload.toString() });
      this.buf = this.buf.subarray(at + len);
    }
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  async waitFor(pred, ms, what) {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.slice(-3)).slice(0, 400)}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, Math.min(left, 200)); });
    }
  }

  // Sends one text frame holding `payload` (a Buffer or string), or a
  // frame made once by textFrame(); false when the socket's buffer is full.
  sendText(payload) {
    return this.sock.write(payload instanceof Frame ? payload.bytes : textFrame(payload).bytes);
  }

  // The JSON messages received, and the close frame if one came.
  messages() { return this.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.text)); }
  closeFrame() { return this.frames.find((f) => f.opcode === 8) ?? null; }
  async closed(ms = 10000) { await this.waitFor(() => this.closeFrame() || this.ended, ms, 'the close'); return this.closeFrame(); }
  destroy() { this.sock.destroy(); }
}

class Frame {
  constructor(bytes) { this.bytes = bytes; }
}

// A client's text frame, masked once, so that sending it again costs the
// test process nothing (a fixed mask is legal, if not what a browser does).
export function textFrame(payload) { return clientFrame(0x1, payload); }

// Any client frame: `opcode` (0x0 continuation, 0x1 text, 0x9 ping), and
// `fin` false for a fragment that more of its message follows.
export function clientFrame(opcode, payload, { fin = true } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const mask = randomBytes(4);
  const first = (fin ? 0x80 : 0) | opcode;
  const head = data.length < 126 ? Buffer.from([first, 0x80 | data.length])
    : data.length < 65536 ? Buffer.from([first, 0x80 | 126, data.length >> 8, data.length & 0xff])
      : Buffer.concat([Buffer.from([first, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(data.length)); return b; })()]);
  const masked = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ mask[i & 3];
  return new Frame(Buffer.concat([head, mask, masked]));
}
