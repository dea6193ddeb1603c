// Types of sync-client/indexeddb-storage.js (browsers), exported as
// `@syncd/client/indexeddb-storage`. `storage: 'indexeddb'` uses it.

import type { Patch, StoredCheckpoint, SyncStorage } from '../sync-client.js';

/**
 * A SyncStorage in IndexedDB: database `sync-client:NAME` with the object
 * stores `meta` (key `checkpoint`) and `pending` (patches appended after
 * it, in order). Appends complete with durability 'strict' before the
 * patches are sent; a checkpoint replaces both stores in one transaction.
 *
 * One tab at a time owns a database: the one holding the Web Lock
 * `sync-client:NAME`. Another tab opening it starts with the stored
 * confirmed graph, stores nothing (`owner` false: its edits are sent at
 * once and kept in memory only) and queues for the lock; when the owner
 * closes or its tab goes, the next tab takes the store over with the
 * edits left pending in it. Without Web Locks (an insecure context) no
 * tab owns the store.
 */
export class IndexedDbStorage implements SyncStorage {
  /** Opens (creating it if need be) the database of `name`, for `channel`. Rejects outside a browser. */
  static open(options: { name: string; channel: string }): Promise<IndexedDbStorage>;
  /** `sync-client:NAME`: the database's name, and its lock's. */
  readonly dbName: string;
  readonly channel: string;
  /** This tab holds the lock and writes the store; false while another tab does. */
  readonly owner: boolean;
  /** `listener(true)` when this tab becomes the owner; returns the unsubscribe function. */
  onOwnerChange(listener: (owner: boolean) => void): () => void;
  /**
   * The stored state. For the owner: the checkpoint and the patches
   * appended after it. Otherwise: the confirmed graph only (no pending
   * patches, a clientId of its own).
   */
  load(): Promise<StoredCheckpoint | null>;
  appendPending(patches: Patch[]): Promise<void>;
  saveCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  /** Closes the database and gives the lock to the next tab waiting for it. */
  close(): Promise<void>;
}
