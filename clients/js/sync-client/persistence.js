// Keeps a client's state in a storage adapter (sync-client.d.ts,
// `SyncStorage`): write-ahead for edits, periodic checkpoints of the rest.
//
// Invariants:
//  - Write-ahead: a patch is handed to `onDurable` (and only then sent)
//    after appendPending() for it resolved.
//  - Adapter calls never overlap: each starts after the previous one
//    settled, so an adapter needs no locking of its own.
//  - A checkpoint holds the confirmed state at some version V (the fold of
//    the log up to V, or a whole snapshot: never one in the middle of its
//    pages), the patches already received past V, and every pending patch
//    already appended; the adapter's log then holds only what is appended
//    after it. Loading gives checkpoint + log: all the edits not known to
//    be confirmed at V, in the order they were made, with their ids.
//  - So a patch acknowledged after the last checkpoint is loaded as pending
//    again and resent with its id: the server answers `ignored`, and it
//    counts once. Checkpoints only make startup and resending cheaper; no
//    correctness rests on their timing.

export class Persistence {
  /**
   * adapter: a SyncStorage. capture(isDurable): the checkpoint to store now,
   * or null while none can be taken (mid-snapshot). onDurable(patches):
   * those patches are stored and may be sent. onError(error): a failed
   * store, reported as an `error` event. adopt(patches): pending patches
   * of the store's last owner, which this client takes over (shared stores).
   */
  constructor(adapter, { checkpointInterval, capture, onDurable, onError, adopt }) {
    Object.assign(this, { adapter, checkpointInterval, capture, onDurable, onError, adopt });
    this.queue = Promise.resolve();  // the adapter call in flight, and those after it
    this.unwritten = [];             // patches not yet handed to appendPending, oldest first
    this.writing = new Set();        // ids of patches not yet durable (unwritten or being written)
    this.batchQueued = false;        // a writeBatch is in the queue: later appends join it
    this.dirty = false;              // something a checkpoint would record has changed
    this.timer = null;               // the next checkpoint, when dirty
    this.lastFailure = null;
    // A store shared with other tabs (indexeddb-storage.js): this client may
    // become its owner later, when the tab that owned it goes.
    adapter.onOwnerChange?.((owner) => { if (owner) this.takeOver(); });
  }

  isDurable(id) { return !this.writing.has(id); }

  // Group commit: appends made while a write is in flight go out together
  // in the next one (one write and one fsync for all of them).
  append(patch) {
    this.unwritten.push(patch);
    this.writing.add(patch.id);
    if (this.batchQueued) return;
    this.batchQueued = true;
    this.run(() => this.writeBatch());
  }

  async writeBatch() {
    this.batchQueued = false;
    const batch = this.unwritten;
    this.unwritten = [];
    try {
      await this.adapter.appendPending(batch);
    } catch (e) {
      // Still not durable, so still unsent: tried again with the next edit or checkpoint.
      this.unwritten = batch.concat(this.unwritten);
      this.batchQueued = true;
      this.schedule();
      throw e;
    }
    for (const p of batch) this.writing.delete(p.id);
    this.lastFailure = null;
    this.onDurable(batch);
  }

  /** The confirmed state, the received patches or the pending list changed: checkpoint soon. */
  changed() {
    this.dirty = true;
    this.schedule();
  }

  /** Checkpoint now, not after checkpointInterval (something must not be loaded again). */
  checkpointNow() {
    this.dirty = true;
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.run(() => this.checkpoint());
  }

  schedule() {
    if (this.timer !== null || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.batchQueued) this.run(() => this.writeBatch());
      if (this.dirty) this.run(() => this.checkpoint());
    }, this.checkpointInterval);
  }

  async checkpoint() {
    const state = this.capture((id) => this.isDurable(id));
    if (state === null) return this.schedule();  // mid-snapshot: later
    this.dirty = false;
    try {
      await this.adapter.saveCheckpoint(state);
    } catch (e) {
      this.changed();
      throw e;
    }
    return undefined;
  }

  run(op) {
    this.queue = this.queue.then(op).catch((e) => {
      this.lastFailure = e;
      this.onError(e);
    });
  }

  // This client now owns a store another client wrote until now. The edits
  // that one left unconfirmed become this client's (adopt: shown, and sent
  // with their ids), and a checkpoint records all this client holds,
  // including the edits it made while it stored nothing.
  takeOver() {
    if (this.closed) return;
    this.run(async () => {
      const stored = await this.adapter.load();
      this.adopt(stored?.pending ?? []);
      this.dirty = true;
      await this.checkpoint();
    });
  }

  /** Resolves once every patch appended so far is durable; rejects with the store's error if one is not. */
  async flush() {
    await this.queue;
    if (this.writing.size > 0) {
      throw new Error(`${this.writing.size} edits are not stored: ${this.lastFailure?.message ?? 'the store failed'}`);
    }
  }

  /** A last checkpoint, then the adapter is closed; rejects when edits could not be stored. */
  async close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.batchQueued) this.run(() => this.writeBatch());
    if (this.dirty) this.run(() => this.checkpoint());
    await this.queue;
    const unstored = this.writing.size;
    await this.adapter.close();
    if (unstored > 0) {
      throw new Error(`${unstored} edits were not stored: ${this.lastFailure?.message ?? 'the store failed'}`);
    }
  }
}
