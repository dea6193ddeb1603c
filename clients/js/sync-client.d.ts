// Types of the public API of sync-client.js (hand-written; the client is
// plain JavaScript with no build step). README.md describes the behaviour.

// ---- The graph ----------------------------------------------------------------

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Property values of a node or an edge. */
export type Properties = { readonly [key: string]: Json };

/** A node of the local graph. Frozen: never changed in place; copy it to change it. */
export interface GraphNode {
  readonly label: string;
  readonly properties: Properties;
}

/** An edge of the local graph. Frozen, like nodes. */
export interface GraphEdge {
  readonly label: string;
  readonly from: string;
  readonly to: string;
  readonly properties: Properties;
}

/** The ops of PROTOCOL.md, in either spelling the server accepts. */
export type PatchOp =
  | 'create_node' | 'update_node' | 'delete_node'
  | 'create_edge' | 'update_edge' | 'delete_edge'
  | 'set_property' | 'remove_property' | 'opaque'
  | 'createNode' | 'updateNode' | 'deleteNode'
  | 'createEdge' | 'updateEdge' | 'deleteEdge'
  | 'setProperty' | 'removeProperty';

/** A patch as the protocol carries it (PROTOCOL.md, "Concepts"). */
export interface Patch {
  readonly id: string;
  readonly timestamp: number;
  readonly clientId: string;
  readonly op: PatchOp | string;
  readonly nodeId?: string;
  readonly edgeId?: string;
  readonly targetType?: 'node' | 'edge';
  readonly targetId?: string;
  readonly data?: Json;
  readonly propertyKey?: string;
  readonly propertyValue?: Json;
  /** The channel version the client had confirmed when it made the patch. */
  readonly baseVersion?: number;
  /** Set on patches the server stored. */
  readonly serverVersion?: number;
}

/** A graph of `Map`s, as applyPatch works on it. */
export interface Graph {
  nodes: Map<string, GraphNode>;
  edges: Map<string, GraphEdge>;
}

/** Applies `patch` to `graph` by the rules syncd enforces; false if it does not apply (nothing changed). */
export function applyPatch(graph: Graph, patch: Patch): boolean;

// ---- Options --------------------------------------------------------------------

/** What the client needs of a WebSocket class: the browser's, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly url: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'close', listener: () => void, options?: { once?: boolean }): void;
}
export type WebSocketClass = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface SyncClientOptions {
  /** The bridge's WebSocket endpoint, e.g. `ws://localhost:8080/sync`. */
  serverUrl: string;
  /** Names this client (sent as `clientId=`: presence, positions). Random if absent (kept in storage). */
  clientId?: string;
  /** 1–128 chars of `[A-Za-z0-9._:-]`; default `default`. */
  channel?: string;
  /** First reconnect delay, ms (default 1000); doubles per failed attempt, with jitter. */
  reconnectInterval?: number;
  /** Longest reconnect delay, ms (default 30000). */
  maxReconnectInterval?: number;
  /** Heartbeat period, ms (default 30000; the bridge closes sockets silent for 60 s). */
  heartbeatInterval?: number;
  /** A JWT, for servers with authentication on (sent as a WebSocket subprotocol). */
  token?: string | null;
  /** Keep the channel's presence in `client.presence` and emit `presence` events. */
  presence?: boolean;
  /** The WebSocket class. Required in Node (`import WebSocket from 'ws'`); defaults to the browser's. */
  WebSocket?: WebSocketClass;
  /**
   * Durable local state. A directory path (Node only): the confirmed graph,
   * its version and the pending edits are kept there across restarts.
   * `'indexeddb'` (browsers): the same in IndexedDB, one tab of the origin
   * at a time (IndexedDbStorage, `@syncd/client/indexeddb-storage`). Or a
   * SyncStorage adapter. Without it, state lives in memory only.
   */
  storage?: 'indexeddb' | string | SyncStorage;
  /**
   * With `storage: 'indexeddb'`: names the database (`sync-client:NAME`)
   * and the lock its tabs share. Default: the channel.
   */
  name?: string;
  /** With storage: the most often, in ms, the confirmed state is checkpointed (default 1000). */
  checkpointInterval?: number;
  /**
   * Keep the local graph (confirmed state + pending edits) in KuzuDB too, for
   * `query()`: `':memory:'`, or a directory (it holds `graph.kuzu`, rebuilt at
   * start). Needs kuzu-wasm 0.11, loaded only with this option.
   */
  databasePath?: ':memory:' | string;
  /**
   * The kuzu-wasm module for `databasePath`: required in a browser (its
   * default export, or the module namespace); in Node, by default the client
   * loads `kuzu-wasm/nodejs` itself.
   */
  kuzu?: KuzuModule | { default: KuzuModule };
}

/** What the client needs of the kuzu-wasm module (its async API). */
export interface KuzuModule {
  Database: new (databasePath: string) => unknown;
  Connection: new (database: unknown) => unknown;
  /** Ends kuzu-wasm's worker; in Node the process does not exit before. */
  close(): Promise<void>;
}

/** A row of `query()`: the RETURN names and their values. */
export type QueryRow = { [column: string]: unknown };

// ---- Storage ----------------------------------------------------------------------

/** A graph's elements as stored: `[id, element]` pairs. */
export type StoredElements<T> = Array<[string, T]>;

/**
 * A checkpoint: the confirmed state at `version` (the fold of the channel's
 * log up to it, or a whole snapshot), the patches received past it, and the
 * pending patches at that moment, oldest first.
 */
export interface StoredCheckpoint {
  channel: string;
  clientId: string;
  version: number;
  nodes: StoredElements<GraphNode>;
  edges: StoredElements<GraphEdge>;
  /** Patches received past `version` (after a gap), each with its serverVersion. */
  arrived: Patch[];
  pending: Patch[];
}

/**
 * Where a client keeps its state. The Node file store (`storage: 'dir'`,
 * or `FileStorage` from `@syncd/client/file-storage`) is one; a browser
 * store (IndexedDB) implements the same four calls.
 *
 * Contract:
 * - Calls never overlap: the client starts one after the previous settled.
 * - appendPending: the patches are durable, in order, when it resolves. The
 *   client sends a patch only after that (write-ahead). A crash mid-call may
 *   lose the patches of that call (they were never sent), nothing else.
 * - saveCheckpoint: atomic. Once it resolves, load() returns this checkpoint,
 *   with the patches appended after it added to `pending`; patches appended
 *   before it are dropped (the checkpoint's `pending` holds those still
 *   unconfirmed). A crash mid-call leaves the previous checkpoint and log.
 * - load: called once, first. Resolves to null for an empty store; rejects
 *   with an error saying what to do for one it cannot read, rather than
 *   returning a partial state.
 * - close: releases the store (the file store's lock); no calls follow.
 * - A store several clients share (IndexedDbStorage: the tabs of an
 *   origin) has one owner at a time. It sets `owner`, stores nothing while
 *   false, and calls the onOwnerChange listener when this client becomes
 *   the owner; the client then calls load() again and adopts the pending
 *   patches it returns.
 */
export interface SyncStorage {
  load(): Promise<StoredCheckpoint | null>;
  appendPending(patches: Patch[]): Promise<void>;
  saveCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  close(): Promise<void>;
  /** Shared stores only: this client is the one that writes. */
  readonly owner?: boolean;
  /** Shared stores only: `listener(true)` when this client becomes the owner; returns the unsubscribe function. */
  onOwnerChange?(listener: (owner: boolean) => void): () => void;
}

// ---- Events -------------------------------------------------------------------------

/** The whole local graph as plain objects (elements frozen and shared, not copied). */
export interface GraphSnapshot {
  nodes: Record<string, GraphNode>;
  edges: Record<string, GraphEdge>;
  /** The confirmed version: every version up to it is applied. */
  version: number;
  /** How many of this client's patches await an answer. */
  pending: number;
  connected: boolean;
}

export interface ChangeEvent {
  version: number;
  pending: number;
  connected: boolean;
  /**
   * What this change is about: a local edit, the patches that came from the
   * server, or a pending patch the server answered (accepted, ignored or
   * rejected; a rejected one is rolled back).
   */
  patches: readonly Patch[];
  /** The whole graph, read when first accessed (the state at that moment; no copy is made otherwise). */
  readonly nodes: Record<string, GraphNode>;
  readonly edges: Record<string, GraphEdge>;
}

export interface RejectedEvent {
  patch: Patch;
  /** The server's code: conflict, not_found, invalid_patch, forbidden, … */
  code?: string;
  reason?: string;
}

export type StatusEvent =
  | { connected: true }
  | { connected: false; code: number; gone: boolean };

/**
 * An error frame from the server (its codes: PROTOCOL.md), or one of the
 * client's own: `invalid_frame` (a frame it could not read; ignored),
 * `storage` (storing local state failed; edits stay unsent until a store
 * succeeds), `kuzu` (with databasePath: updating KuzuDB failed, so it is
 * rebuilt; or an element KuzuDB cannot hold is left out of it), `internal`
 * (a fault handling a frame).
 */
export interface ErrorEvent {
  code: string;
  message: string;
}

/** A connection to the channel, as presence lists it. */
export interface PresenceMember {
  readonly connectionId: string;
  readonly clientId: string;
  readonly subject?: string;
  readonly transport: string;
  readonly connectedAt: string | number;
  readonly state: { readonly [key: string]: Json };
  readonly deliveredVersion?: string | number;
  readonly appliedVersion?: string | number;
}

export type PresenceEvent =
  | { members: readonly PresenceMember[]; type: 'state' }
  | { members: readonly PresenceMember[]; type: 'join' | 'update' | 'leave'; member: PresenceMember };

export interface SyncClientEvents {
  change: ChangeEvent;
  rejected: RejectedEvent;
  status: StatusEvent;
  error: ErrorEvent;
  presence: PresenceEvent;
}
export type SyncClientEventName = keyof SyncClientEvents;

/** Every event name `on()` accepts; any other throws a TypeError. */
export const EVENTS: readonly SyncClientEventName[];

// ---- The client ---------------------------------------------------------------------

export class SyncClient {
  readonly clientId: string;
  readonly channel: string;
  /** The channel's members (with `presence: true`); a new array on each change, empty while offline. */
  readonly presence: readonly PresenceMember[];

  /** Subscribes; returns the function that unsubscribes. Throws a TypeError for an unknown event name. */
  on<E extends SyncClientEventName>(event: E, listener: (value: SyncClientEvents[E]) => void): () => void;
  onChange(listener: (value: ChangeEvent) => void): () => void;

  // Edits: applied locally at once, stored (with storage) and sent. With
  // databasePath, a label or property key outside the name rule throws a TypeError.
  createNode(label: string, properties?: Properties, nodeId?: string): string;
  updateNode(nodeId: string, properties: Properties, label?: string): void;
  deleteNode(nodeId: string): void;
  createEdge(label: string, fromNodeId: string, toNodeId: string, properties?: Properties, edgeId?: string): string;
  updateEdge(edgeId: string, properties: Properties, label?: string): void;
  deleteEdge(edgeId: string): void;
  setProperty(targetType: 'node' | 'edge', targetId: string, propertyKey: string, propertyValue: Json): void;
  removeProperty(targetType: 'node' | 'edge', targetId: string, propertyKey: string): void;

  // Reading the local graph (confirmed state + pending edits).
  snapshot(): GraphSnapshot;
  getNode(id: string): GraphNode | undefined;
  getEdge(id: string): GraphEdge | undefined;
  getNodes(): Record<string, GraphNode>;
  getEdges(): Record<string, GraphEdge>;
  getServerVersion(): number;
  getPendingPatchCount(): number;
  /** This client's unanswered patches, oldest first. */
  getPendingPatches(): Patch[];

  /** The storage adapter in use (for `storage: 'indexeddb'` an IndexedDbStorage: see its `owner`), or null. */
  readonly storage: SyncStorage | null;
  isReady(): boolean;
  /** The channel was deleted: the client stopped for good. */
  isGone(): boolean;
  /** Resolves once the first complete history (or snapshot) has arrived. */
  whenSynced(): Promise<void>;
  /** Resolves once every edit made so far is stored (at once without storage); rejects if storing failed. */
  flush(): Promise<void>;

  /**
   * With databasePath: runs a read-only Cypher query with `$name`
   * parameters on the local graph in KuzuDB, after every change made or
   * received before the call. Rejects a query that writes (CREATE, MERGE,
   * SET, DELETE, …) and KuzuDB's own errors.
   */
  query(cypher: string, params?: { [name: string]: unknown }): Promise<QueryRow[]>;
  /** With databasePath: the graph as KuzuDB holds it, values decoded by column type; like snapshot(). */
  kuzuGraph(): Promise<{ nodes: Record<string, GraphNode>; edges: Record<string, GraphEdge> }>;

  /** This connection's presence state (a JSON object, at most 1 KiB); throws TypeError / RangeError otherwise. */
  setPresence(state: { [key: string]: Json }): void;
  getPresenceState(): { readonly [key: string]: Json } | null;
  /** A fresh JWT for the open connection and every later one. */
  setToken(token: string): void;

  /**
   * Stops reconnecting, closes the socket and the storage. Resolves once the
   * socket is closed and the last checkpoint written; the same promise on
   * every call. Edits after it throw.
   */
  close(): Promise<void>;
}

/**
 * Starts a client: loads its storage (if any; snapshot() then shows the
 * stored graph and pending edits at once) and connects. Rejects with a
 * clear error for a missing WebSocket class, a storage it cannot read or
 * one in use by another process.
 */
export function createSyncClient(options: SyncClientOptions): Promise<SyncClient>;
