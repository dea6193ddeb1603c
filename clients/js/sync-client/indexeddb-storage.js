// A client's durable state in the browser's IndexedDB (`storage: 'indexeddb'`;
// sync-client.js imports this module only then). It implements SyncStorage
// (sync-client.d.ts). One database per `name` (default: the channel),
// called `sync-client:NAME`, version 1, holding two object stores:
//
//   meta      key 'checkpoint': the last checkpoint (Persistence,
//             persistence.js): {format, channel, clientId, version, nodes,
//             edges, arrived, pending}
//   pending   the patches appended after that checkpoint, under
//             auto-incremented keys (so in the order they were appended)
//
// Invariants:
//  - appendPending resolves once its readwrite transaction has completed
//    with durability 'strict' (flushed to disk), which is before the
//    patches are sent. A crash before that loses the whole transaction:
//    patches never sent.
//  - saveCheckpoint puts the checkpoint and clears `pending` in one
//    transaction: a crash leaves the old checkpoint and log, or the new
//    checkpoint and an empty log, never a mix.
//  - load reads both stores in one transaction: a consistent picture even
//    while another tab writes.
//
// Tabs. Every tab of an origin sees the same database, but a store has
// one writer at a time: the tab holding the Web Lock `sync-client:NAME`
// (navigator.locks), the owner. Two writers would drop each other's edits
// (a checkpoint clears the log, holding only its own tab's pending list).
// A tab that finds the lock taken starts with the stored confirmed graph
// (read-only, no pending edits: those are the owner's to send) and runs
// without storage: appendPending and saveCheckpoint store nothing, so its
// edits are sent at once and live only in memory; `owner` is false. It
// waits in the lock's queue. When the owner closes (client.close(), the tab
// closed or reloaded: the browser releases its locks), the next tab in the
// queue becomes owner: its client loads the store again, adopts the
// pending edits the last owner left (sent with their ids, so one the
// server already stored is answered `ignored` and counts once) and writes
// a checkpoint of its whole state. No edit is stored by two tabs at once,
// none stored is dropped, and no transaction sees another half-done.
//
// Web Locks need a secure context (https, or http on localhost). Without
// them no tab can be sure it is alone, so every tab runs without storage.

import { randomId } from './client.js';

const FORMAT = 'syncd-client-checkpoint/1';
const VERSION = 1;

const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isPatch = (v) => isRecord(v) && typeof v.id === 'string';

// IndexedDB's callbacks as promises: a transaction completed, a request's result.
const done = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = tx.onabort = () => reject(tx.error ?? new Error('the IndexedDB transaction was aborted'));
});
const result = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});

function openDatabase(dbName) {
  const request = indexedDB.open(dbName, VERSION);
  request.onupgradeneeded = () => {
    const db = request.result;
    db.createObjectStore('meta');
    db.createObjectStore('pending', { autoIncrement: true });
  };
  return result(request);
}

export class IndexedDbStorage {
  /**
   * Opens (creating it if need be) the database of `name` for `channel`,
   * and takes the store's lock if no other tab holds it; otherwise queues
   * for it (see `owner`).
   */
  static async open({ name, channel }) {
    if (typeof indexedDB === 'undefined') {
      throw new TypeError("createSyncClient: storage 'indexeddb' needs IndexedDB (a browser); in Node pass a directory path");
    }
    const dbName = `sync-client:${name}`;
    const store = new IndexedDbStorage(dbName, channel, await openDatabase(dbName));
    await store.lock();
    return store;
  }

  constructor(dbName, channel, db) {
    this.dbName = dbName;
    this.channel = channel;
    this.db = db;
    this.owner = false;             // this tab holds the lock: the only one that writes
    this.release = null;            // gives the lock back
    this.abort = new AbortController();  // withdraws a queued lock request
    this.listeners = new Set();
    this.closed = false;
  }

  // Takes the lock now if it is free, else queues for it in the background.
  // The lock is held until `release` is called (close) or the tab goes.
  async lock() {
    if (typeof navigator === 'undefined' || !navigator.locks) return;  // no locks: never owner
    const hold = () => new Promise((resolve) => {
      this.owner = true;
      this.release = resolve;
    });
    const took = await new Promise((resolve) => {
      navigator.locks.request(this.dbName, { ifAvailable: true }, (lock) => {
        resolve(lock !== null);
        return lock && hold();
      });
    });
    if (took) return;
    navigator.locks.request(this.dbName, { signal: this.abort.signal }, () => {
      if (this.closed) return undefined;
      const held = hold();
      // Each on its own: a listener that throws must not end this callback, which would release the lock.
      for (const fn of this.listeners) queueMicrotask(() => fn(true));
      return held;
    }).catch(() => {});  // withdrawn by close()
  }

  // Gives the lock up: this tab stores nothing more (a store it cannot read
  // must not be written either).
  resign() {
    this.owner = false;
    this.release?.();
    this.release = null;
  }

  /** Calls `fn(true)` when this tab becomes the owner; returns the function that unsubscribes. */
  onOwnerChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  damaged(what) {
    return new Error(`storage: IndexedDB database ${this.dbName} ${what}. It was damaged or not written by this client; ` +
      'delete it (the browser\'s site data, or indexedDB.deleteDatabase) to start afresh ' +
      '(edits it holds that never reached the server would be lost)');
  }

  async load() {
    try {
      return await this.read();
    } catch (e) {
      this.resign();
      throw e;
    }
  }

  async read() {
    const tx = this.db.transaction(['meta', 'pending'], 'readonly');
    const [cp, appended] = await Promise.all([
      result(tx.objectStore('meta').get('checkpoint')), result(tx.objectStore('pending').getAll())]);
    if (cp === undefined) {
      // The first checkpoint is written before the first append.
      if (appended.length > 0) throw this.damaged('holds pending edits but no checkpoint');
      return null;
    }
    if (!isRecord(cp) || cp.format !== FORMAT) throw this.damaged(`holds no checkpoint of format ${FORMAT}`);
    if (cp.channel !== this.channel) {
      throw new Error(`storage: IndexedDB database ${this.dbName} holds channel ${JSON.stringify(cp.channel)}, ` +
        `not ${JSON.stringify(this.channel)}: give each channel its own name`);
    }
    if (!Array.isArray(cp.pending) || !appended.every(isPatch)) throw this.damaged('holds a pending edit that is not a patch');
    const { format, ...state } = cp;
    // Not the owner: the confirmed graph only, under a clientId of this tab's own.
    if (!this.owner) return { ...state, clientId: randomId('client_'), pending: [] };
    return { ...state, pending: [...cp.pending, ...appended] };
  }

  async appendPending(patches) {
    if (!this.owner) return;
    const tx = this.db.transaction('pending', 'readwrite', { durability: 'strict' });
    const pending = tx.objectStore('pending');
    for (const p of patches) pending.add(p);
    await done(tx);
  }

  async saveCheckpoint(state) {
    if (!this.owner) return;
    const tx = this.db.transaction(['meta', 'pending'], 'readwrite', { durability: 'strict' });
    tx.objectStore('meta').put({ format: FORMAT, ...state }, 'checkpoint');
    tx.objectStore('pending').clear();
    await done(tx);
  }

  async close() {
    this.closed = true;
    this.listeners.clear();
    this.abort.abort();
    this.db.close();
    this.resign();
  }
}
