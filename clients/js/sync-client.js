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
 */
export async function createSyncClient(options) {
  const WS = options.WebSocket ?? globalThis.WebSocket ?? (await import('ws')).default;
  const client = new SyncClient({ ...options, WebSocket: WS });
  client.connect();
  return client;
}

export class SyncClient {
  constructor({ serverUrl, clientId = randomId('client_'), channel = 'default', reconnectInterval = 1000,
    maxReconnectInterval = 30000, heartbeatInterval = 30000, token = null, WebSocket }) {
    Object.assign(this, { serverUrl, clientId, channel, reconnectInterval, maxReconnectInterval, heartbeatInterval, token });
    this.WS = WebSocket;
    this.confirmed = { nodes: new Map(), edges: new Map() };
    this.version = 0;               // confirmed: every version up to it is applied
    this.arrived = new Map();       // version -> patch, received out of order
    this.snapshotVersion = null;    // V while the pages of a snapshot at V arrive
    this.lastError = null;          // the code of the last error frame on this connection
    this.gone = false;              // the channel was deleted: no more reconnects
    this.pending = [];              // this client's unacknowledged patches, oldest first
    this.view = copyGraph(this.confirmed);
    this.listeners = { change: new Set(), rejected: new Set(), status: new Set(), error: new Set() };
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
    const ws = this.token ? new this.WS(url.toString(), ['sync', `bearer.${this.token}`]) : new this.WS(url.toString());
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.lastError = null;
      this.ready = true;
      for (const p of this.pending) this.send({ type: 'patch', payload: p });  // same ids: stored at most once
      this.heartbeat = setInterval(() => this.send({ type: 'heartbeat', payload: null }), this.heartbeatInterval);
      this.emit('status', { connected: true });
    };
    ws.onmessage = (event) => this.receive(JSON.parse(typeof event.data === 'string' ? event.data : event.data.toString()));
    ws.onclose = (event) => {
      clearInterval(this.heartbeat);
      const wasReady = this.ready;
      this.ready = false;
      // error not_found, then close 1008: the channel was deleted. Other
      // closes (1008 for a refused token included) are retried with backoff.
      if (event.code === 1008 && this.lastError === 'not_found') this.gone = true;
      if (wasReady) this.emit('status', { connected: false, code: event.code, gone: this.gone });
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

  async close() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    if (this.ws && this.ws.readyState <= 1) {
      await new Promise((resolve) => { this.ws.addEventListener('close', resolve); this.ws.close(); });
    }
  }

  // -- Server messages ---------------------------------------------------------

  receive(msg) {
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

  // -- Events: change, rejected, status, error ------------------------------------

  on(event, fn) { this.listeners[event].add(fn); return () => this.listeners[event].delete(fn); }
  onChange(fn) { return this.on('change', fn); }
  emit(event, value) { for (const fn of this.listeners[event]) fn(value); }
}
