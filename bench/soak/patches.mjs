// What the writers send, and the record of every answer they got.
//
// Graph writers only touch their own nodes and edges, and only ones whose
// creation has been acknowledged, and they never delete nodes: so every
// patch they mean to be valid stays valid whatever order a resend after a
// fault puts it in, and a validation rejection of one is a finding. A small
// share of patches is invalid on purpose and must be rejected.

// Opaque patches carry one CRDT-style change naming the patch's own id, so
// a /crdt reader (which sees only the changes) can tell which patch it got.
export const crdtChange = (patchId, n, site) => ['items', patchId, 'val', n, 1, n, site, 1, 0];
export const patchIdOfChange = (change) => (Array.isArray(change) ? String(change[1]) : undefined);

export class GraphPatches {
  constructor(name, r, invalidShare) {
    Object.assign(this, { name, r, invalidShare });
    this.seq = 0;
    this.nodes = [];          // created and acknowledged
    this.edges = new Set();   // created and acknowledged, not being deleted
  }

  // The next patch; `referenced(id)` says whether a pending patch still
  // names an element (then it is not deleted under that patch).
  next(referenced) {
    const { r, name } = this;
    const id = `${name}-${++this.seq}`;
    const base = { id, timestamp: Date.now(), clientId: name };
    const camel = r.chance(0.2);  // the original clients' camelCase spelling, now and then
    const op = (snake, camelName) => (camel ? camelName : snake);
    if (r.chance(this.invalidShare)) return { ...this.invalid(base), invalid: true };
    if (this.nodes.length < 2 || r.chance(0.2)) {
      return { ...base, op: op('create_node', 'createNode'), nodeId: `${name}-n${this.seq}`,
        data: { label: r.pick(['Person', 'Doc', 'Task']), properties: { seq: this.seq, name: `n${this.seq}` } } };
    }
    const node = r.pick(this.nodes);
    const edge = this.edges.size ? r.pick([...this.edges]) : null;
    const roll = r.next();
    if (roll < 0.35) {
      return { ...base, op: op('set_property', 'setProperty'), targetType: 'node', targetId: node,
        propertyKey: r.pick(['score', 'title', 'tags']), propertyValue: r.pick([this.seq, `v${this.seq}`, [1, 2, this.seq], { k: this.seq }]) };
    }
    if (roll < 0.5) {
      return { ...base, op: op('update_node', 'updateNode'), nodeId: node, data: { properties: { touched: this.seq } } };
    }
    if (roll < 0.65) {
      const to = r.pick(this.nodes);
      return { ...base, op: op('create_edge', 'createEdge'), edgeId: `${name}-e${this.seq}`,
        data: { label: 'LINKS', fromNodeId: node, toNodeId: to, properties: { w: this.seq } } };
    }
    if (roll < 0.75 && edge) {
      return { ...base, op: op('update_edge', 'updateEdge'), edgeId: edge, data: { properties: { w: -this.seq } } };
    }
    if (roll < 0.8 && edge && !referenced(edge)) {
      this.edges.delete(edge);  // never named again
      return { ...base, op: op('delete_edge', 'deleteEdge'), edgeId: edge };
    }
    if (roll < 0.85) {
      return { ...base, op: op('remove_property', 'removeProperty'), targetType: 'node', targetId: node, propertyKey: 'tags' };
    }
    return { ...base, op: 'set_property', targetType: 'node', targetId: node, propertyKey: 'score', propertyValue: this.seq };
  }

  // Deliberately wrong: must come back rejected and never be stored.
  invalid(base) {
    switch (this.r.int(3)) {
      case 0: return { ...base, op: 'update_node', nodeId: `ghost-${base.id}`, data: { properties: { x: 1 } } };
      case 1: return { ...base, op: 'set_property', targetType: 'edge', targetId: `ghost-${base.id}`, propertyKey: 'x', propertyValue: 1 };
      default: return { ...base, op: 'create_node', nodeId: `bad-${base.id}`, data: { label: 'not a label!', properties: {} } };
    }
  }

  // Its creation is acknowledged: later patches may name it.
  confirmed(p) {
    if (p.op === 'create_node' || p.op === 'createNode') this.nodes.push(p.nodeId);
    if (p.op === 'create_edge' || p.op === 'createEdge') this.edges.add(p.edgeId);
  }
}

// Opaque patches (as CRDT change sets) for gRPC writers on the CRDT channel.
export class OpaquePatches {
  constructor(name, r, invalidShare) {
    Object.assign(this, { name, r, invalidShare });
    this.seq = 0;
  }

  next() {
    const id = `${this.name}-${++this.seq}`;
    const base = { id, timestamp: Date.now(), clientId: this.name };
    if (this.r.chance(this.invalidShare)) return { ...base, op: 'frobnicate', invalid: true };
    return { ...base, op: 'opaque', data: { changes: [crdtChange(id, this.seq, this.name)] } };
  }

  confirmed() {}
}

// Every patch sent and every answer received, with times, for the checker
// and the fault timings.
export class Record {
  constructor() {
    this.sent = new Map();  // patch id -> {channel, writer, invalid, op}
    this.acks = [];         // {t, writer, channel, id, status, version, code, reason}
    this.counts = { accepted: 0, ignored: 0, acked: 0, rejected: 0, retryable: 0, reads: 0, sends: 0 };
  }

  noteSent(writer, channel, p) {
    this.counts.sends++;
    if (!this.sent.has(p.id)) this.sent.set(p.id, { channel, writer, invalid: !!p.invalid, op: p.op });
  }

  // status: accepted | ignored | rejected, or `acked` for /crdt acks (which
  // do not say whether the update was new or a duplicate).
  // `sentAt`: when this copy of the patch was last sent.
  noteAck(writer, channel, id, status, version, code, reason, sentAt) {
    const a = { t: Date.now(), writer, channel, id, status, version: Number(version ?? 0), sentAt };
    if (code) a.code = code;
    if (reason) a.reason = String(reason).slice(0, 200);
    this.acks.push(a);
    if (status === 'rejected' && isRetryable(code)) this.counts.retryable++;
    else this.counts[status] = (this.counts[status] ?? 0) + 1;
  }
}

// Rejections that say "nothing was decided, resend": the outcome is not
// final, so the patch stays pending.
export const isRetryable = (code) => code === 'unavailable' || code === 'internal';

// A /crdt replica's updates: its own version counter, the patch id the
// bridge derives from it (crdt:<siteId>:<version>).
export class CrdtUpdates {
  constructor(site) {
    this.site = site;
    this.version = 0;
  }

  next() {
    const v = ++this.version;
    const id = `crdt:${this.site}:${v}`;
    return { id, op: 'opaque', crdtVersion: v, data: { changes: [crdtChange(id, v, this.site)] } };
  }

  confirmed() {}
}

// The patch as it goes on the wire (without the soak's own bookkeeping).
export function wire(p) {
  const { invalid, crdtVersion, ...rest } = p;
  return rest;
}
