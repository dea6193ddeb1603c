// The local replica of a channel's graph: the confirmed state (the
// server's patches applied in version order, every one up to `version`) +
// patches received past a gap (`arrived`) + this client's patches not yet
// acknowledged (`pending`), in the order they were made. SyncClient
// (client.js) builds on it; this part knows nothing of sockets.
//
// Invariant: `view` is that sum. It is kept up to date where that is exact
// and cheap, and otherwise marked stale (viewValid false) and rebuilt from
// the three parts when next read, so no message costs a copy of the graph.

import { applyPatch, copyGraph, deepFreeze, emptyGraph } from './graph.js';

export class Replica {
  constructor() {
    this.confirmed = emptyGraph();
    this.version = 0;               // confirmed: every version up to it is applied
    this.arrived = new Map();       // version -> patch, received out of order
    this.snapshotVersion = null;    // V while the pages of a snapshot at V arrive
    this.pending = [];              // this client's unacknowledged patches, oldest first
    this.currentView = null;        // confirmed + arrived + pending, when viewValid
    this.viewValid = false;
  }

  restore(stored) {
    if (stored.channel !== this.channel) {
      throw new Error(`the storage holds channel ${JSON.stringify(stored.channel)}, not ${JSON.stringify(this.channel)}: ` +
        'give each channel its own storage');
    }
    const elements = (entries) => new Map(entries.map(([id, el]) => [id, deepFreeze(el)]));
    this.confirmed = { nodes: elements(stored.nodes), edges: elements(stored.edges) };
    this.version = stored.version;
    for (const p of stored.arrived) if (p.serverVersion > this.version) this.arrived.set(p.serverVersion, deepFreeze(p));
    this.pending = stored.pending.map(deepFreeze);
  }

  // What a checkpoint records (persistence.js); null in the middle of a
  // snapshot, whose confirmed state is not whole yet.
  checkpointState(isDurable) {
    if (this.snapshotVersion !== null) return null;
    return {
      channel: this.channel, clientId: this.clientId, version: this.version,
      nodes: [...this.confirmed.nodes], edges: [...this.confirmed.edges],
      arrived: [...this.arrived.values()], pending: this.pending.filter((p) => isDurable(p.id)),
    };
  }

  // The server's state at `version` replaces the confirmed state: empty
  // here, filled by the snapshot's pages. The version may go down (a
  // channel deleted and written again). Pending patches stay (the view
  // applies them on top; one stored at or before V is answered and drops
  // out); arrivals after V stay queued, since the versions after V follow.
  restartAt(version) {
    this.confirmed = emptyGraph();
    this.version = version;
    this.snapshotVersion = version;
    this.viewValid = false;
    for (const v of this.arrived.keys()) if (v <= version) this.arrived.delete(v);
  }

  // A stored patch at its version: applied once every earlier one is.
  // The view is kept up to date where that is exact (the next version, with
  // nothing received ahead of it: another client's patch when nothing is
  // pending, or this client's oldest pending patch, which the view already
  // shows in that place); otherwise it is rebuilt when next read.
  arrive(patch) {
    if (patch.serverVersion <= this.version) return;
    const next = this.arrived.size === 0 && patch.serverVersion === this.version + 1;
    const mine = this.pending.findIndex((p) => p.id === patch.id);
    if (next && mine < 0 && this.pending.length === 0) {
      if (this.viewValid) applyPatch(this.currentView, patch);
    } else if (!(next && mine === 0)) {
      this.viewValid = false;
    }
    // One of ours (answered now, or stored in an earlier connection): confirmed.
    if (mine >= 0) this.pending.splice(mine, 1);
    this.arrived.set(patch.serverVersion, patch);
    while (this.arrived.has(this.version + 1)) {
      const ready = this.arrived.get(this.version + 1);
      this.arrived.delete(this.version + 1);
      applyPatch(this.confirmed, ready);
      this.version += 1;
    }
  }

  // A sync_state page: log entries, or a part of the snapshot at
  // snapshotVersion, which goes straight into the confirmed state.
  takePage(page) {
    if (this.snapshotVersion === null) {
      for (const p of page.patches) this.arrive(p);
      return;
    }
    for (const p of page.patches) applyPatch(this.confirmed, p);
    this.viewValid = false;
  }

  // The server's answer to one of ours: that patch, or null for an id that
  // is not pending (answered already).
  answered({ patchId, status, serverVersion }) {
    const i = this.pending.findIndex((p) => p.id === patchId);
    if (i < 0) return null;
    const patch = this.pending[i];
    if (status === 'rejected') {
      this.pending.splice(i, 1);
      this.viewValid = false;
    } else if (serverVersion <= this.version) {
      // Stored in an earlier connection and confirmed since: the view counted it twice.
      this.pending.splice(i, 1);
      this.viewValid = false;
    } else {
      this.arrive(Object.freeze({ ...patch, serverVersion }));
    }
    return patch;
  }

  get view() {
    if (!this.viewValid) {
      const view = copyGraph(this.confirmed);
      for (const v of [...this.arrived.keys()].sort((a, b) => a - b)) applyPatch(view, this.arrived.get(v));
      for (const p of this.pending) applyPatch(view, p);
      this.currentView = view;
      this.viewValid = true;
    }
    return this.currentView;
  }

  // An edit of this client's, shown at once.
  addPending(patch) {
    this.pending.push(patch);
    if (this.viewValid) applyPatch(this.currentView, patch);
  }

  // -- Reading --------------------------------------------------------------------

  getServerVersion() { return this.version; }
  getNode(id) { return this.view.nodes.get(id); }
  getEdge(id) { return this.view.edges.get(id); }
  getNodes() { return Object.fromEntries(this.view.nodes); }
  getEdges() { return Object.fromEntries(this.view.edges); }
  getPendingPatchCount() { return this.pending.length; }
  getPendingPatches() { return [...this.pending]; }
}
