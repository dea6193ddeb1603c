// sync-client.js — a client of the JSON sync protocol (sync-bridge), for
// browsers and Node. An ES module with no build step:
//
//   import { createSyncClient } from './sync-client.js';        // or '/sync-client.js' from the bridge
//   const client = await createSyncClient({ serverUrl: 'ws://localhost:8080/sync', clientId: 'me', channel: 'demo' });
//   const id = client.createNode('Person', { name: 'Ada' });   // applied locally at once
//   client.onChange(({ nodes, edges, version, pending }) => render(nodes, edges));
//
// The local graph is always: the confirmed state (the server's patches
// applied in version order) + this client's patches not yet acknowledged,
// in the order they were made. A rejected patch simply drops out of that
// sum, which rolls it back. On reconnect the client resumes from its last
// confirmed version and resends pending patches with the same ids: one the
// server already stored comes back `ignored`, never applied twice.
//
// When the versions the client needs were compacted away (or it is ahead
// of the channel: one deleted and written again), the server sends a
// snapshot instead: the state at a version V, which replaces the confirmed
// state; pending patches stay on top, and the versions after V follow as
// usual. A deleted channel ends the session: no reconnect, since resending
// pending patches would create the channel again.
//
// Presence: with `presence: true` the client keeps `client.presence`, the
// list of every connection to the channel (its own included), from the
// server's presence_state / presence_join / presence_update /
// presence_leave frames, and emits a `presence` event on each change.
// `setPresence(state)` sets this connection's state (a JSON object of at
// most 1 KiB, e.g. a name and a colour) for everyone to see; it is resent
// after a reconnect. Whether or not presence is on, the client reports the
// version it has applied (`applied`, at most once a second), which the
// server shows as its position and lag.
//
// In Node, pass `WebSocket` (from the `ws` package) or have `ws` installed.

const randomId = (prefix) =>
  prefix + (globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`);

// ---- The graph model (the rules syncd validates against) ---------------

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

const OPS = {
  create_node: 'create_node', createNode: 'create_node',
  update_node: 'update_node', updateNode: 'update_node',
  delete_node: 'delete_node', deleteNode: 'delete_node',
  create_edge: 'create_edge', createEdge: 'create_edge',
  update_edge: 'update_edge', updateEdge: 'update_edge',
  delete_edge: 'delete_edge', deleteEdge: 'delete_edge',
  set_property: 'set_property', setProperty: 'set_property',
  remove_property: 'remove_property', removeProperty: 'remove_property',
  opaque: 'opaque',
};

/** Applies `patch` to `graph` ({nodes: Map, edges: Map}); false if it does not apply. */
export function applyPatch(graph, patch) {
  const { nodes, edges } = graph;
  const data = patch.data ?? {};
  switch (OPS[patch.op]) {
    case 'create_node':
      if (nodes.has(patch.nodeId)) return false;
      nodes.set(patch.nodeId, { label: data.label, properties: clone(data.properties ?? {}) });
      return true;
    case 'update_node':
    case 'update_edge': {
      const map = OPS[patch.op] === 'update_node' ? nodes : edges;
      const el = map.get(OPS[patch.op] === 'update_node' ? patch.nodeId : patch.edgeId);
      if (!el) return false;
      if (data.label !== undefined) el.label = data.label;
      Object.assign(el.properties, clone(data.properties ?? {}));
      return true;
    }
    case 'delete_node':
      if (!nodes.delete(patch.nodeId)) return false;
      for (const [id, e] of edges) if (e.from === patch.nodeId || e.to === patch.nodeId) edges.delete(id);
      return true;
    case 'create_edge':
      if (edges.has(patch.edgeId) || !nodes.has(data.fromNodeId) || !nodes.has(data.toNodeId)) return false;
      edges.set(patch.edgeId, { label: data.label, from: data.fromNodeId, to: data.toNodeId, properties: clone(data.properties ?? {}) });
      return true;
    case 'delete_edge':
      return edges.delete(patch.edgeId);
    case 'set_property':
    case 'remove_property': {
      const el = (patch.targetType === 'edge' ? edges : nodes).get(patch.targetId);
      if (!el) return false;
      if (OPS[patch.op] === 'set_property') el.properties[patch.propertyKey] = clone(patch.propertyValue);
      else delete el.properties[patch.propertyKey];
      return true;
    }
    default:
      return true;  // opaque and unknown ops change no graph
  }
}

// A presence state's size as the server counts it: bytes of UTF-8 JSON.
const MAX_PRESENCE_BYTES = 1024;
const jsonBytes = (json) => new TextEncoder().encode(json).length;

const copyGraph = (g) => ({
  nodes: new Map([...g.nodes].map(([id, n]) => [id, clone(n)])),
  edges: new Map([...g.edges].map(([id, e]) => [id, clone(e)])),
});

// ---- The client -----------------------------------------------------------

/**
 * Options: serverUrl (ws://host:8080/sync), clientId, channel ('default'),
 * reconnectInterval (first retry delay, ms, 1000), maxReconnectInterval
 * (30000), heartbeatInterval (ms, 30000), token (a JWT, for servers with
 * authentication on: sent as a WebSocket subprotocol, since browsers cannot
 * set headers; clientId must then be the token's subject), WebSocket
 * (constructor; defaults to the global one, or the `ws` package in Node).
 * setToken(jwt) hands the open session a fresh token before the old expires.
 * Resolves once the client is running; `whenSynced()` waits for the first
 * complete history. Works offline: edits wait in the pending queue.
 * A deleted channel (an `error` event with code not_found, then close 1008)
 * ends the session for good: isGone() is true and pending patches stay unsent.
 *
 * Presence: `presence: true` asks for the channel's presence: `client.presence`
 * is then the list of members (every connection to the channel, this one
 * included: {connectionId, clientId, subject?, transport, connectedAt, state,
 * deliveredVersion, appliedVersion}), replaced by a new array on each change
 * and emptied while disconnected, and `on('presence', ({members, type, member}) => …)`
 * tells of each change (type 'state': the whole list was replaced; 'join',
 * 'update', 'leave': `member` changed). A clientId given here is sent to the
 * server (`clientId=`), naming this client in presence and keeping its
 * position across reconnects; a client without one is listed with an empty
 * clientId. setPresence(state) sets this connection's state, with or
 * without `presence: true`.
 */
export async function createSyncClient(options) {
  const WS = options.WebSocket ?? globalThis.WebSocket ?? (await import('ws')).default;
  const client = new SyncClient({ ...options, WebSocket: WS });
  client.connect();
  return client;
}

export class SyncClient {
  constructor({ serverUrl, clientId, channel = 'default', reconnectInterval = 1000,
    maxReconnectInterval = 30000, heartbeatInterval = 30000, token = null, presence = false, WebSocket }) {
    Object.assign(this, { serverUrl, channel, reconnectInterval, maxReconnectInterval, heartbeatInterval, token });
    this.named = clientId !== undefined && clientId !== null;  // sent as clientId= (a named client)
    this.clientId = this.named ? clientId : randomId('client_');
    this.watchPresence = Boolean(presence);  // sent as presence=1
    this.WS = WebSocket;
    this.confirmed = { nodes: new Map(), edges: new Map() };
    this.version = 0;               // confirmed: every version up to it is applied
    this.arrived = new Map();       // version -> patch, received out of order
    this.snapshotVersion = null;    // V while the pages of a snapshot at V arrive
    this.lastError = null;          // the code of the last error frame on this connection
    this.gone = false;              // the channel was deleted: no more reconnects
    this.pending = [];              // this client's unacknowledged patches, oldest first
    this.view = copyGraph(this.confirmed);
    this.listeners = { change: new Set(), rejected: new Set(), status: new Set(), error: new Set(), presence: new Set() };
    this.presence = [];             // the channel's members (presence: true); a new array on each change
    this.presenceState = null;      // this connection's state (setPresence), sent on every connection
    this.presenceDirty = false;     // presenceState not yet sent on this connection
    this.presenceAt = 0;            // when a presence_update was last sent (ms)
    this.appliedSent = 0;           // the last `applied` version sent on this connection
    this.appliedAt = 0;             // when it was sent (ms)
    this.joined = false;            // this connection's first history page came: the server has it listed
    this.ready = false;
    this.closed = false;
    this.attempt = 0;
    this.synced = new Promise((resolve) => { this.resolveSynced = resolve; });
  }

  // -- Connection ------------------------------------------------------------

  connect() {
    const url = new URL(this.serverUrl);
    url.searchParams.set('channel', this.channel);
    url.searchParams.set('since', String(this.version));
    if (this.named) url.searchParams.set('clientId', this.clientId);
    if (this.watchPresence) url.searchParams.set('presence', '1');
    const ws = this.token ? new this.WS(url.toString(), ['sync', `bearer.${this.token}`]) : new this.WS(url.toString());
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.lastError = null;
      this.ready = true;
      this.joined = false;
      this.appliedSent = 0;
      this.presenceDirty = this.presenceState !== null;
      for (const p of this.pending) this.send({ type: 'patch', payload: p });  // same ids: stored at most once
      this.heartbeat = setInterval(() => this.send({ type: 'heartbeat', payload: null }), this.heartbeatInterval);
      this.emit('status', { connected: true });
    };
    ws.onmessage = (event) => this.receive(JSON.parse(typeof event.data === 'string' ? event.data : event.data.toString()));
    ws.onclose = (event) => {
      clearInterval(this.heartbeat);
      this.stopTimers();
      const wasReady = this.ready;
      this.ready = false;
      this.joined = false;
      // error not_found, then close 1008: the channel was deleted. Other
      // closes (1008 for a refused token included) are retried with backoff.
      if (event.code === 1008 && this.lastError === 'not_found') this.gone = true;
      if (wasReady) this.emit('status', { connected: false, code: event.code, gone: this.gone });
      // Offline, the list is unknown: emptied until the next presence_state.
      if (this.presence.length > 0) this.setMembers([], 'state');
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
    if (this.ready && this.ws.readyState === 1) this.ws.send(JSON.stringify(msg));
  }

  stopTimers() {
    clearTimeout(this.presenceTimer);
    clearTimeout(this.appliedTimer);
    this.presenceTimer = this.appliedTimer = null;
  }

  async close() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    this.stopTimers();
    if (this.ws && this.ws.readyState <= 1) {
      await new Promise((resolve) => { this.ws.addEventListener('close', resolve); this.ws.close(); });
    }
  }

  // -- Server messages ---------------------------------------------------------

  receive(msg) {
    // Presence frames may come between the pages of a snapshot (answering a
    // sync_request, or a catch-up): they neither end it nor touch the graph.
    if (msg.type?.startsWith('presence_')) return this.presenceFrame(msg);
    // A snapshot is its first page (`snapshot: true`) and the pages after it
    // at the same version; any other message ends it. Each page goes
    // straight into the confirmed state; the page with hasMore false that
    // closes the history after it says the state is whole.
    const page = msg.type === 'sync_state' ? msg.payload : null;
    if (page?.snapshot) this.restartAt(page.version);
    else if (page?.version !== this.snapshotVersion) this.snapshotVersion = null;
    switch (msg.type) {
      case 'sync_state':
        for (const p of page.patches) {
          if (this.snapshotVersion === null) this.arrive(p);
          else applyPatch(this.confirmed, p);
        }
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
        break;
      case 'patch_response':
        this.answered(msg.payload);
        break;
      case 'error':
        this.lastError = msg.payload?.code ?? null;
        this.emit('error', msg.payload);
        break;
      default:
        break;
    }
    this.refresh();
    this.reportApplied();
  }

  // -- Presence ----------------------------------------------------------------

  presenceFrame({ type, payload }) {
    if (!payload) return;
    const id = payload.connectionId;
    const others = () => this.presence.filter((m) => m.connectionId !== id);
    switch (type) {
      case 'presence_state':
        return this.setMembers(Array.isArray(payload.members) ? payload.members : [], 'state');
      case 'presence_join':
      case 'presence_update': {
        const members = others();
        // In connectedAt order, as the server lists them.
        const at = members.findIndex((m) => m.connectedAt > payload.connectedAt);
        members.splice(at < 0 ? members.length : at, 0, payload);
        return this.setMembers(members, type === 'presence_join' ? 'join' : 'update', payload);
      }
      case 'presence_leave':
        return this.setMembers(others(), 'leave', payload);
      default:
        return undefined;
    }
  }

  setMembers(members, type, member) {
    this.presence = members;
    this.emit('presence', member === undefined ? { members, type } : { members, type, member });
  }

  // This connection's presence state (a JSON object of at most 1 KiB),
  // replacing the previous one. Sent at most 10 times a second (the latest
  // wins), and again on every reconnect.
  setPresence(state) {
    if (state === null || typeof state !== 'object' || Array.isArray(state)) {
      throw new TypeError('setPresence: the state must be a JSON object');
    }
    const json = JSON.stringify(state);
    if (jsonBytes(json) > MAX_PRESENCE_BYTES) {
      throw new RangeError(`setPresence: a presence state is at most ${MAX_PRESENCE_BYTES} bytes of JSON (this one is ${jsonBytes(json)})`);
    }
    this.presenceState = JSON.parse(json);
    this.presenceDirty = true;
    this.flushPresence();
  }

  getPresenceState() { return clone(this.presenceState); }

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

  // The server's state at `version` replaces the confirmed state: empty
  // here, filled by the snapshot's pages. The version may go down (a
  // channel deleted and written again). Pending patches stay (refresh()
  // applies them on top; one stored at or before V is answered and drops
  // out); arrivals after V stay queued, since the versions after V follow.
  restartAt(version) {
    this.confirmed = { nodes: new Map(), edges: new Map() };
    this.version = version;
    this.snapshotVersion = version;
    for (const v of this.arrived.keys()) if (v <= version) this.arrived.delete(v);
  }

  // A stored patch at its version: applied once every earlier one is.
  arrive(patch) {
    if (patch.serverVersion <= this.version) return;
    this.arrived.set(patch.serverVersion, patch);
    // One of ours, stored in an earlier connection: it is confirmed now.
    this.pending = this.pending.filter((p) => p.id !== patch.id);
    while (this.arrived.has(this.version + 1)) {
      const next = this.arrived.get(this.version + 1);
      this.arrived.delete(this.version + 1);
      applyPatch(this.confirmed, next);
      this.version += 1;
    }
  }

  answered({ patchId, status, serverVersion, code, reason }) {
    const i = this.pending.findIndex((p) => p.id === patchId);
    if (i < 0) return;
    const [patch] = this.pending.splice(i, 1);
    if (status === 'rejected') {
      this.emit('rejected', { patch, code, reason });
    } else {
      // accepted, or ignored (already stored at serverVersion)
      this.arrive({ ...patch, serverVersion });
    }
  }

  refresh() {
    const view = copyGraph(this.confirmed);
    for (const v of [...this.arrived.keys()].sort((a, b) => a - b)) applyPatch(view, this.arrived.get(v));
    for (const p of this.pending) applyPatch(view, p);
    this.view = view;
    this.emit('change', this.snapshot());
  }

  // -- Edits (optimistic) ------------------------------------------------------

  submit(fields) {
    const patch = { id: randomId('p_'), timestamp: Date.now(), clientId: this.clientId, baseVersion: this.version, ...fields };
    this.pending.push(patch);
    this.send({ type: 'patch', payload: patch });
    this.refresh();
    return patch;
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

  // -- Reading -----------------------------------------------------------------

  // A fresh token: used by every later connection, and sent to the open one.
  setToken(token) {
    this.token = token;
    if (this.ready) this.send({ type: 'auth', payload: { token } });
  }

  isReady() { return this.ready; }
  isGone() { return this.gone; }
  getPendingPatchCount() { return this.pending.length; }
  getServerVersion() { return this.version; }
  getNode(id) { return clone(this.view.nodes.get(id)); }
  getEdge(id) { return clone(this.view.edges.get(id)); }
  getNodes() { return Object.fromEntries([...this.view.nodes].map(([id, n]) => [id, clone(n)])); }
  getEdges() { return Object.fromEntries([...this.view.edges].map(([id, e]) => [id, clone(e)])); }
  whenSynced() { return this.synced; }
  snapshot() {
    return { nodes: this.getNodes(), edges: this.getEdges(), version: this.version, pending: this.pending.length, connected: this.ready };
  }

  // -- Events: change, rejected, status, error, presence ----------------------------

  on(event, fn) { this.listeners[event].add(fn); return () => this.listeners[event].delete(fn); }
  onChange(fn) { return this.on('change', fn); }
  emit(event, value) { for (const fn of this.listeners[event]) fn(value); }
}
