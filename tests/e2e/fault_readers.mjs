// Readers for fault tests: a gRPC Watch or a /sync WebSocket of sync-bridge
// follows a channel, and reconnects from its last version whenever its
// stream ends. Each records the patch id it saw at every version, and any
// gap or duplicate; fault_checks.mjs holds that against the stored log.
import grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { now, waitFor } from './fault_probes.mjs';

// What a reader saw, and how its streams ended; `open()` (of each kind)
// follows the channel from `last`.
class Reader {
  constructor(name, channel) {
    this.name = name;
    this.channel = channel;
    this.last = 0;
    this.ids = [];           // ids[v] = the patch id seen at version v
    this.violations = [];    // gaps, duplicates
    this.reconnects = 0;
    this.ends = [];          // why each stream ended
    this.running = false;
  }

  start() {
    this.running = true;
    this.reopen();
    return this;
  }

  reopen() {
    if (!this.running) return;
    this.openedAt = now();
    this.open();
  }

  seen(version, id) {
    if (version !== this.last + 1) {
      this.violations.push(`${this.name}: got version ${version} after ${this.last}`);
      if (version <= this.last) return;  // a duplicate
    }
    this.ids[version] = id;
    this.last = version;
  }

  streamEnded(why) {
    if (!this.running) return;  // stopped
    this.ends.push({ openedAt: this.openedAt, at: now(), why });
    this.reconnects++;
    setTimeout(() => this.reopen(), 200);  // not at once: a server that refuses is not hammered
  }

  async caughtUp(head, ms = 30000) {
    await waitFor(() => this.last >= head, ms, `${this.name} to reach version ${head} (at ${this.last}; ends: ${this.ends.slice(-3).map((e) => e.why).join('; ')})`);
  }
}

// Follows a channel with gRPC Watch.
export class WatchReader extends Reader {
  constructor(client, channel, name = 'watch') {
    super(name, channel);
    this.client = client;
  }

  open() {
    const call = this.client.Watch({ channel: this.channel, fromVersion: this.last });
    this.call = call;
    let done = false;
    const end = (why) => {
      if (done) return;
      done = true;
      this.streamEnded(why);
    };
    call.on('data', (p) => this.seen(p.serverVersion, p.id));
    call.on('error', (e) => end(`${grpc.status[e.code] ?? e.code}: ${e.details}`));
    call.on('end', () => end('OK'));
  }

  stop() {
    this.running = false;
    this.call?.cancel();
  }
}

// Follows a channel through a /sync WebSocket of sync-bridge.
export class WsReader extends Reader {
  constructor(bridgeUrl, channel, name = 'ws-reader') {
    super(name, channel);
    this.bridgeUrl = bridgeUrl;
    this.closes = [];  // close codes, with the error frame before them
  }

  open() {
    const ws = new WebSocket(`${this.bridgeUrl}/sync?channel=${this.channel}&since=${this.last}`);
    this.ws = ws;
    let error = null;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'sync_state') for (const p of m.payload.patches) this.seen(p.serverVersion, p.id);
      else if (m.type === 'patch_broadcast') this.seen(m.payload.serverVersion, m.payload.id);
      else if (m.type === 'error') error = m.payload.code;
    });
    ws.on('close', (code) => {
      this.closes.push({ at: now(), code, error });
      this.streamEnded(`${code} ${error ?? ''}`);
    });
    ws.on('error', () => {});
  }

  stop() {
    this.running = false;
    this.ws?.terminate();
  }
}
