// SyncClient: one channel of the JSON sync protocol (PROTOCOL.md) over a
// WebSocket that reconnects with backoff, its graph kept locally (the
// Replica it extends: confirmed state + this client's pending patches).
//
// A rejected patch drops out of the pending list, which rolls it back. On
// reconnect the client resumes from its last confirmed version and resends
// pending patches with the same ids: one the server already stored comes
// back `ignored`, never applied twice.
//
// When the versions the client needs were compacted away (or it is ahead of
// the channel: one deleted and written again), the server sends a snapshot
// instead: the state at a version V, which replaces the confirmed state;
// pending patches stay on top, and the versions after V follow as usual. A
// deleted channel ends the client: no reconnect, since resending pending
// patches would create the channel again.
//
// With a storage adapter (persistence.js) every edit is stored before it is
// sent, and the rest of the state is checkpointed now and then, so a new
// process picks up where the last one stopped.

import { Emitter } from './events.js';
import { decodeFrame } from './frames.js';
import { deepFreeze, frozenCopy, plainGraph } from './graph.js';
import { Persistence } from './persistence.js';
import { nextPresence, presenceJson } from './presence.js';
import { Replica } from './replica.js';

export const randomId = (prefix) =>
  prefix + (globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`);

const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

export class SyncClient extends Replica {
  constructor({ serverUrl, clientId, channel = 'default', reconnectInterval = 1000, maxReconnectInterval = 30000,
    heartbeatInterval = 30000, token = null, presence = false, WebSocket, storage = null, stored = null,
    checkpointInterval = 1000 }) {
    super();
    Object.assign(this, { serverUrl, channel, reconnectInterval, maxReconnectInterval, heartbeatInterval, token });
    this.named = clientId !== undefined && clientId !== null;  // sent as clientId= (a named client)
    this.clientId = this.named ? clientId : (stored?.clientId ?? randomId('client_'));
    this.watchPresence = Boolean(presence);  // sent as presence=1
    this.WS = WebSocket;
    this.emitter = new Emitter();
    this.lastError = null;          // the code of the last error frame on this connection
    this.gone = false;              // the channel was deleted: no more reconnects
    this.presence = [];             // the channel's members (presence: true); a new array on each change
    this.presenceState = null;      // this connection's state (setPresence), sent on every connection
    this.presenceDirty = false;     // presenceState not yet sent on this connection
    this.presenceAt = 0;            // when a presence_update was last sent (ms)
    this.appliedSent = 0;           // the last `applied` version sent on this connection
    this.appliedAt = 0;             // when it was sent (ms)
    this.joined = false;            // this connection's first history page came: the server has it listed
    this.ready = false;
    this.closed = false;
    this.closing = null;            // close()'s promise
    this.attempt = 0;
    this.synced = new Promise((resolve) => { this.resolveSynced = resolve; });
    this.localStore = null;         // with databasePath: the graph kept in KuzuDB too (kuzu-store.js)
    if (stored) this.restore(stored);
    this.persistence = storage && new Persistence(storage, {
      checkpointInterval,
      capture: (isDurable) => this.checkpointState(isDurable),
      onDurable: (patches) => this.sendPatches(patches),
      onError: (e) => this.emitter.emit('error', { code: 'storage', message: `storing the client's state failed: ${e.message}` }),
      adopt: (patches) => this.adopt(patches),
    });
  }

  // -- Connection ---------------------------------------------------------------

  connect() {
    const url = new URL(this.serverUrl);
    url.searchParams.set('channel', this.channel);
    url.searchParams.set('since', String(this.version));
    if (this.named) url.searchParams.set('clientId', this.clientId);
    if (this.watchPresence) url.searchParams.set('presence', '1');
    let ws;
    try {
      ws = this.token ? new this.WS(url.toString(), ['sync', `bearer.${this.token}`]) : new this.WS(url.toString());
    } catch (e) {
      // A URL or token the WebSocket refuses: said, and tried again later
      // (setToken() may fix it), never thrown out of a timer.
      this.emitter.emit('error', { code: 'connect_failed', message: e.message });
      if (!this.closed && !this.gone) this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.lastError = null;
      this.ready = true;
      this.joined = false;
      this.appliedSent = 0;
      this.presenceDirty = this.presenceState !== null;
      // Same ids: stored at most once. One not yet stored locally goes out once it is.
      for (const p of this.pending) if (this.persistence?.isDurable(p.id) ?? true) this.send({ type: 'patch', payload: p });
      this.heartbeat = setInterval(() => this.send({ type: 'heartbeat', payload: null }), this.heartbeatInterval);
      this.emitter.emit('status', { connected: true });
    };
    ws.onmessage = (event) => this.onFrame(event.data);
    ws.onclose = (event) => {
      clearInterval(this.heartbeat);
      this.stopTimers();
      const wasReady = this.ready;
      this.ready = false;
      this.joined = false;
      // error not_found, then close 1008: the channel was deleted. Other
      // closes (1008 for a refused token included) are retried with backoff.
      if (event.code === 1008 && this.lastError === 'not_found') this.gone = true;
      if (wasReady) this.emitter.emit('status', { connected: false, code: event.code, gone: this.gone });
      // Offline, the list is unknown: emptied until the next presence_state.
      if (this.presence.length > 0) this.presenceFrame({ type: 'presence_state', payload: { members: [] } });
      if (!this.closed && !this.gone) this.scheduleReconnect();
    };
    ws.onerror = () => {};  // onclose follows and reconnects
  }

  scheduleReconnect() {
    // Exponential backoff with jitter, so a restarted server is not hit by
    // every client at the same instant.
    const base = Math.min(this.maxReconnectInterval, this.reconnectInterval * 2 ** this.attempt);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }

  send(msg) {
    if (this.ready && this.ws.readyState === OPEN) this.ws.send(JSON.stringify(msg));
  }

  // Patches just stored: those still pending go out now (if connected; if
  // not, on the next connection).
  sendPatches(patches) {
    for (const p of patches) if (this.pending.includes(p)) this.send({ type: 'patch', payload: p });
  }

  stopTimers() {
    clearTimeout(this.presenceTimer);
    clearTimeout(this.appliedTimer);
    this.presenceTimer = this.appliedTimer = null;
  }

  close() {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async shutdown() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    this.stopTimers();
    const ws = this.ws;
    if (ws && ws.readyState !== CLOSED) {
      await new Promise((resolve) => {
        ws.addEventListener('close', () => resolve(), { once: true });
        if (ws.readyState !== CLOSING) ws.close();
      });
    }
    try {
      await this.persistence?.close();  // rejects when edits could not be stored
    } finally {
      await this.localStore?.close();
    }
  }

  // -- Server messages ------------------------------------------------------------

  // Nothing thrown here may escape into the WebSocket's event dispatch: a
  // frame the client cannot use, or a fault in handling one, is an `error`
  // event and the connection carries on.
  onFrame(data) {
    const { msg, error } = decodeFrame(data);
    if (error) {
      this.emitter.emit('error', { code: 'invalid_frame', message: `the server sent a frame this client cannot read: ${error}` });
      return;
    }
    try {
      this.receive(deepFreeze(msg));
    } catch (e) {
      this.emitter.emit('error', { code: 'internal', message: `handling a ${msg.type} frame failed: ${e.message}` });
    }
  }

  receive(msg) {
    // Presence frames may come between the pages of a snapshot (answering a
    // sync_request, or a catch-up): they neither end it nor touch the graph.
    if (msg.type.startsWith('presence_')) return this.presenceFrame(msg);
    // A snapshot is its first page (`snapshot: true`) and the pages after it
    // at the same version; any other message ends it. Each page goes
    // straight into the confirmed state; the page with hasMore false that
    // closes the history after it says the state is whole.
    const page = msg.type === 'sync_state' ? msg.payload : null;
    if (page?.snapshot) {
      this.restartAt(page.version);
      this.localStore?.reset();
    }
    else if (page?.version !== this.snapshotVersion) this.snapshotVersion = null;
    let changed = null;  // the patches a change event tells of, when something changed
    switch (msg.type) {
      case 'sync_state':
        this.takePage(page);
        changed = page.patches;
        if (!page.hasMore) {
          this.snapshotVersion = null;
          this.resolveSynced();
        }
        if (!this.joined) {
          // The server has listed this connection by now: its state may go.
          this.joined = true;
          this.flushPresence();
        }
        break;
      case 'patch_broadcast':
        this.arrive(msg.payload);
        changed = [msg.payload];
        break;
      case 'patch_response': {
        const patch = this.answered(msg.payload);
        if (patch && msg.payload.status === 'rejected') {
          // Recorded at once, not at the next checkpoint: a rejected edit
          // loaded as pending after a crash would be sent again, and might
          // then be accepted.
          this.persistence?.checkpointNow();
          this.emitter.emit('rejected', { patch, code: msg.payload.code, reason: msg.payload.reason });
        }
        if (patch) changed = [patch];
        break;
      }
      case 'error':
        this.lastError = msg.payload?.code ?? null;
        this.emitter.emit('error', msg.payload);
        break;
      default:
        break;
    }
    if (changed) {
      this.persistence?.changed();
      this.emitChange(changed);
    }
    this.reportApplied();
    return undefined;
  }

  // -- Presence -------------------------------------------------------------------

  presenceFrame(msg) {
    const event = nextPresence(this.presence, msg);
    this.presence = event.members;
    this.emitter.emit('presence', event);
  }

  // This connection's presence state (a JSON object of at most 1 KiB),
  // replacing the previous one. Sent at most 10 times a second (the latest
  // wins), and again on every reconnect.
  setPresence(state) {
    this.presenceState = deepFreeze(JSON.parse(presenceJson(state)));
    this.presenceDirty = true;
    this.flushPresence();
  }

  getPresenceState() { return this.presenceState; }

  flushPresence() {
    if (!this.joined || !this.presenceDirty || this.presenceTimer) return;
    const wait = this.presenceAt + 100 - Date.now();
    if (wait > 0) {
      this.presenceTimer = setTimeout(() => { this.presenceTimer = null; this.flushPresence(); }, wait);
      return;
    }
    this.presenceAt = Date.now();
    this.presenceDirty = false;
    this.send({ type: 'presence_update', payload: { state: this.presenceState } });
  }

  // Tells the server the confirmed version (every version up to it is
  // applied here): at most once a second, never inside a snapshot.
  reportApplied() {
    if (!this.joined || this.snapshotVersion !== null || this.version <= this.appliedSent || this.appliedTimer) return;
    const wait = this.appliedAt + 1000 - Date.now();
    if (wait > 0) {
      this.appliedTimer = setTimeout(() => { this.appliedTimer = null; this.reportApplied(); }, wait);
      return;
    }
    this.appliedAt = Date.now();
    this.appliedSent = this.version;
    this.send({ type: 'applied', payload: { version: this.version } });
  }

  // A change event: what changed, and the whole graph read on demand (no
  // copy of it is made unless a listener reads `nodes` or `edges`).
  emitChange(patches) {
    this.localStore?.touch(patches);
    let graph = null;
    const read = () => (graph ??= plainGraph(this.view));
    this.emitter.emit('change', {
      version: this.version, pending: this.pending.length, connected: this.ready, patches,
      get nodes() { return read().nodes; },
      get edges() { return read().edges; },
    });
  }

  // After the confirmed state was replaced from outside: rebuild and tell.
  refresh() {
    this.viewValid = false;
    this.localStore?.reset();
    this.emitChange([]);
  }

  // -- Edits (optimistic) -----------------------------------------------------------

  submit(fields) {
    if (this.closed) throw new Error('this client is closed; create a new one (createSyncClient) to edit');
    this.localStore?.check(fields);
    const patch = frozenCopy({ id: randomId('p_'), timestamp: Date.now(), clientId: this.clientId, baseVersion: this.version, ...fields });
    this.addPending(patch);
    if (this.persistence) this.persistence.append(patch);  // sent once stored
    else this.send({ type: 'patch', payload: patch });
    this.emitChange([patch]);
    return patch;
  }

  // Pending edits of another client of this storage (a tab that closed;
  // indexeddb-storage.js), already stored: shown and sent as this client's
  // own, with their ids, so each counts once.
  adopt(patches) {
    const known = new Set(this.pending.map((p) => p.id));
    const adopted = patches.filter((p) => !known.has(p.id)).map(deepFreeze);
    if (adopted.length === 0) return;
    for (const p of adopted) this.addPending(p);
    this.sendPatches(adopted);
    this.emitChange(adopted);
  }

  createNode(label, properties = {}, nodeId = randomId('n_')) {
    this.submit({ op: 'create_node', nodeId, data: { label, properties } });
    return nodeId;
  }
  updateNode(nodeId, properties, label) {
    this.submit({ op: 'update_node', nodeId, data: label === undefined ? { properties } : { label, properties } });
  }
  deleteNode(nodeId) { this.submit({ op: 'delete_node', nodeId }); }
  createEdge(label, fromNodeId, toNodeId, properties = {}, edgeId = randomId('e_')) {
    this.submit({ op: 'create_edge', edgeId, data: { label, fromNodeId, toNodeId, properties } });
    return edgeId;
  }
  updateEdge(edgeId, properties, label) {
    this.submit({ op: 'update_edge', edgeId, data: label === undefined ? { properties } : { label, properties } });
  }
  deleteEdge(edgeId) { this.submit({ op: 'delete_edge', edgeId }); }
  setProperty(targetType, targetId, propertyKey, propertyValue) {
    this.submit({ op: 'set_property', targetType, targetId, propertyKey, propertyValue });
  }
  removeProperty(targetType, targetId, propertyKey) {
    this.submit({ op: 'remove_property', targetType, targetId, propertyKey });
  }

  // -- Reading ----------------------------------------------------------------------

  // A fresh token: used by every later connection, and sent to the open one.
  setToken(token) {
    this.token = token;
    if (this.ready) this.send({ type: 'auth', payload: { token } });
  }

  /** Resolves once every edit made so far is stored (at once without storage). */
  async flush() { await this.persistence?.flush(); }

  /** The storage adapter in use, or null. */
  get storage() { return this.persistence?.adapter ?? null; }

  /** A read-only Cypher query on the local graph in KuzuDB (databasePath); resolves to the rows. */
  async query(cypher, params = {}) {
    if (!this.localStore) throw new Error('query() needs the local KuzuDB: create the client with databasePath');
    return this.localStore.query(cypher, params);
  }

  /** The graph as KuzuDB holds it (databasePath), values decoded: {nodes, edges} like snapshot(). */
  async kuzuGraph() {
    if (!this.localStore) throw new Error('kuzuGraph() needs the local KuzuDB: create the client with databasePath');
    return this.localStore.graph();
  }

  isReady() { return this.ready; }
  isGone() { return this.gone; }
  whenSynced() { return this.synced; }
  snapshot() {
    return { ...plainGraph(this.view), version: this.version, pending: this.pending.length, connected: this.ready };
  }

  // -- Events: change, rejected, status, error, presence ------------------------------

  on(event, fn) { return this.emitter.on(event, fn); }
  onChange(fn) { return this.on('change', fn); }
}
