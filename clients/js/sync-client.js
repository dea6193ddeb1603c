// sync-client.js — a client of the JSON sync protocol (sync-bridge), for
// browsers and Node. Plain ES modules, no build step; the bridge serves this
// file at /sync-client.js and its modules (sync-client/*.js) beside it.
//
//   import { createSyncClient } from './sync-client.js';        // or '/sync-client.js' from the bridge
//   const client = await createSyncClient({ serverUrl: 'ws://localhost:8080/sync', clientId: 'me', channel: 'demo' });
//   const id = client.createNode('Person', { name: 'Ada' });   // applied locally at once
//   client.onChange(({ version, pending, patches }) => render(client.snapshot()));
//
// In Node, pass the WebSocket class (`import WebSocket from 'ws'`), and
// `storage: './dir'` to keep the graph and unsent edits across restarts;
// in a browser, `storage: 'indexeddb'`.
// The API is described in README.md and typed in sync-client.d.ts; the
// client itself is sync-client/client.js.

import { SyncClient } from './sync-client/client.js';

export { SyncClient } from './sync-client/client.js';
export { applyPatch } from './sync-client/graph.js';
export { EVENTS } from './sync-client/events.js';

const STORAGE_METHODS = ['load', 'appendPending', 'saveCheckpoint', 'close'];

// A SyncStorage adapter for the `storage` option: 'indexeddb' (browsers),
// a directory path (Node only) or an adapter object. Each store is imported
// here, only when asked for, so browsers never fetch the file store and
// Node never the IndexedDB one.
async function openStorage(storage, { name, channel = 'default' }) {
  if (storage === undefined || storage === null) return null;
  if (storage === 'indexeddb') {
    const { IndexedDbStorage } = await import('./sync-client/indexeddb-storage.js');
    return IndexedDbStorage.open({ name: name ?? channel, channel });
  }
  if (typeof storage === 'string') {
    if (typeof process === 'undefined' || !process.versions?.node) {
      throw new TypeError("createSyncClient: storage as a directory path works in Node only; in a browser use storage: 'indexeddb' (or an adapter object)");
    }
    const { FileStorage } = await import('./sync-client/file-storage.js');
    return FileStorage.open(storage);
  }
  const missing = STORAGE_METHODS.filter((m) => typeof storage[m] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`createSyncClient: storage must be a directory path or an adapter with ${STORAGE_METHODS.join(', ')} (missing: ${missing.join(', ')})`);
  }
  return storage;
}

/**
 * Starts a client (options: see README.md or sync-client.d.ts). With
 * storage, resolves once the stored state is loaded: snapshot() shows it at
 * once, before any network. Works offline: edits wait in the pending queue.
 */
export async function createSyncClient(options) {
  const WebSocket = options.WebSocket ?? globalThis.WebSocket;
  if (typeof WebSocket !== 'function') {
    throw new TypeError('createSyncClient: no WebSocket implementation. In Node, pass one: ' +
      "`import WebSocket from 'ws'` and createSyncClient({ ..., WebSocket })");
  }
  const storage = await openStorage(options.storage, options);
  try {
    const stored = storage ? await storage.load() : null;
    const client = new SyncClient({ ...options, WebSocket, storage, stored });
    // A fresh store is stamped with its channel and clientId before any edit.
    if (!stored) await storage?.saveCheckpoint(client.checkpointState(() => true));
    // With databasePath the graph is kept in KuzuDB too; kuzu-wasm is loaded only then.
    if (options.databasePath !== undefined && options.databasePath !== null) {
      const { KuzuStore } = await import('./sync-client/kuzu-store.js');
      client.localStore = await KuzuStore.open(client, { ...options, onError: (e) => client.emitter.emit('error', e) });
    }
    client.connect();
    return client;
  } catch (e) {
    await storage?.close();
    throw e;
  }
}
