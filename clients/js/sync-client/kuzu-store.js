// KuzuStore: the client's graph (confirmed state + pending edits: the
// replica's view) kept in a KuzuDB database, so an application can run
// Cypher on it. The tables are described in kuzu-schema.js.
//
// Invariants:
//  - `nodes` / `edges` (the mirror) hold exactly the elements KuzuDB holds,
//    each as the view had it when written; `incident` indexes the mirror's
//    edges by node.
//  - Outside a sync, the view differs from the mirror only in elements an
//    event touched since (`dirtyNodes`, `dirtyEdges`, and the edges of
//    nodes in `cutNodes`). A sync compares just those with the mirror and
//    writes the difference, in a transaction (which a schema change splits:
//    kuzu-tables.js). A reset (start, a snapshot, a failed write) rebuilds
//    everything instead.
//  - Every KuzuDB call runs in one queue (`run`): a query runs after the
//    syncs of every event before it.

import { OPS } from './graph.js';
import { KuzuTables } from './kuzu-tables.js';
import { ID, RESERVED, decode, encode, ident, invalidNames, isName, plainValue, writeClause } from './kuzu-schema.js';

const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);

// The kuzu-wasm module: the one passed (its default export, or the module
// namespace holding it), or in Node the package's Node build, which keeps
// databases in real files.
async function kuzuModule(kuzu) {
  if (kuzu !== undefined && kuzu !== null) {
    const mod = typeof kuzu.Database === 'function' ? kuzu : kuzu.default;
    if (typeof mod?.Database !== 'function' || typeof mod?.Connection !== 'function') {
      throw new TypeError('createSyncClient: the kuzu option must be the kuzu-wasm module (e.g. `(await import(\'/kuzu-wasm/index.js\')).default`)');
    }
    return mod;
  }
  if (!isNode) {
    throw new TypeError('createSyncClient: with databasePath in a browser, pass the kuzu-wasm module as the kuzu option ' +
      '(import it from where your server serves node_modules/kuzu-wasm)');
  }
  const { createRequire } = await import('node:module');
  try {
    return createRequire(import.meta.url)('kuzu-wasm/nodejs');
  } catch (e) {
    throw new Error('createSyncClient: databasePath needs the kuzu-wasm package: `npm install kuzu-wasm@0.11`, ' +
      `or pass the module as the kuzu option (${e.message})`);
  }
}

// ':memory:', or a directory that holds the database file graph.kuzu (in a
// browser, a directory of kuzu-wasm's own file system, already made).
async function databaseFile(databasePath) {
  if (databasePath === ':memory:') return databasePath;
  if (typeof databasePath !== 'string' || databasePath === '') {
    throw new TypeError("createSyncClient: databasePath must be ':memory:' or a directory");
  }
  if (!isNode) return `${databasePath.replace(/\/+$/, '')}/graph.kuzu`;
  const [{ mkdirSync }, path] = await Promise.all([import('node:fs'), import('node:path')]);
  mkdirSync(databasePath, { recursive: true });
  return path.join(databasePath, 'graph.kuzu');
}

const sameValue = (a, b) => a === b || JSON.stringify(a) === JSON.stringify(b);

export class KuzuStore {
  /**
   * Opens the database and fills it from the replica's view. replica: the
   * client (its `view` and `snapshotVersion`); onError(event): a write that
   * failed or an element KuzuDB cannot hold, as an `error` event.
   */
  static async open(replica, { databasePath, kuzu, onError }) {
    const mod = await kuzuModule(kuzu);
    const db = new mod.Database(await databaseFile(databasePath));
    const store = new KuzuStore(replica, db, new mod.Connection(db), onError);
    try {
      await store.run(() => store.sync());
      if (store.failure) throw store.failure;
    } catch (e) {
      await store.close();
      throw new Error(`createSyncClient: KuzuDB at databasePath ${JSON.stringify(databasePath)} could not be filled: ${e.message}`);
    }
    return store;
  }

  constructor(replica, db, conn, onError) {
    Object.assign(this, { replica, db, conn, onError });
    this.tables = new KuzuTables(conn);
    this.nodes = new Map();       // the mirror: id -> element as written
    this.edges = new Map();
    this.incident = new Map();    // node id -> ids of the mirror's edges at it
    this.dirtyNodes = new Set();
    this.dirtyEdges = new Set();
    this.cutNodes = new Set();    // deleted (or restored) nodes: their edges in the view are dirty too
    this.resetNeeded = true;
    this.failure = null;          // the error of the last sync, until one succeeds
    this.queue = Promise.resolve();
    this.syncQueued = false;
    this.closed = false;
  }

  /** Throws a TypeError for a patch whose labels or keys break the name rule (before anything runs). */
  check(patch) {
    const bad = invalidNames(patch);
    if (bad.length > 0) {
      throw new TypeError(`${bad.join(', ')}: not a valid name ([A-Za-z_][A-Za-z0-9_]{0,63}, PROTOCOL.md); ` +
        'the server refuses it and KuzuDB cannot name a table or column so');
    }
  }

  /** These patches changed (or were taken back from) the view: their elements are synced next. */
  touch(patches) {
    for (const p of patches) {
      const op = OPS[p.op];
      if (op === 'create_node' || op === 'update_node') this.dirtyNodes.add(p.nodeId);
      else if (op === 'delete_node') {
        this.dirtyNodes.add(p.nodeId);
        this.cutNodes.add(p.nodeId);
      } else if (op === 'create_edge' || op === 'update_edge' || op === 'delete_edge') this.dirtyEdges.add(p.edgeId);
      else if (op === 'set_property' || op === 'remove_property') {
        (p.targetType === 'edge' ? this.dirtyEdges : this.dirtyNodes).add(p.targetId);
      }
    }
    this.schedule();
  }

  /** The view was replaced as a whole (a snapshot): rebuilt at the next sync. */
  reset() {
    this.resetNeeded = true;
    this.schedule();
  }

  schedule() {
    if (this.syncQueued || this.closed) return;
    this.syncQueued = true;
    this.run(() => {
      this.syncQueued = false;
      return this.sync();
    });
  }

  // Runs `fn` after every KuzuDB call queued before it; resolves to its result.
  run(fn) {
    const result = this.queue.then(fn);
    this.queue = result.catch(() => {});
    return result;
  }

  async sync() {
    // A snapshot fills the view page by page: it is written once whole (its
    // last page, or whatever message ends it, schedules a sync again).
    if (this.replica.snapshotVersion !== null) return;
    try {
      if (this.resetNeeded) await this.rebuild(this.replica.view);
      else await this.update(this.replica.view);
      this.failure = null;
    } catch (e) {
      await this.tables.rollback();
      // The mirror may no longer match KuzuDB: start over at the next sync.
      this.resetNeeded = true;
      this.failure = e;
      this.onError({ code: 'kuzu', message: `updating the local KuzuDB failed (it is rebuilt at the next change or query): ${e.message}` });
    }
  }

  async update(view) {
    const nodeIds = this.dirtyNodes;
    const edgeIds = this.dirtyEdges;
    const cut = this.cutNodes;
    this.dirtyNodes = new Set();
    this.dirtyEdges = new Set();
    this.cutNodes = new Set();
    if (cut.size > 0) for (const [id, e] of view.edges) if (cut.has(e.from) || cut.has(e.to)) edgeIds.add(id);
    if (nodeIds.size === 0 && edgeIds.size === 0) return;
    await this.tables.transaction(async () => {
      for (const id of nodeIds) await this.putNode(id, view.nodes.get(id), edgeIds);
      for (const id of edgeIds) await this.putEdge(id, view.edges.get(id));
    });
  }

  async rebuild(view) {
    this.resetNeeded = false;
    this.dirtyNodes.clear();
    this.dirtyEdges.clear();
    this.cutNodes.clear();
    this.nodes.clear();
    this.edges.clear();
    this.incident.clear();
    await this.tables.dropAll();
    await this.tables.transaction(async () => {
      for (const [id, node] of view.nodes) await this.putNode(id, node, new Set());
      for (const [id, edge] of view.edges) await this.putEdge(id, edge);
    });
  }

  // Makes KuzuDB's node `id` the view's `target` (undefined: none). Edges
  // KuzuDB deletes with a node go into `edgeIds`, to be put back if the
  // view still has them.
  async putNode(id, target, edgeIds) {
    const have = this.nodes.get(id);
    if (have === target) return;
    const problem = target && this.problem(target, false);
    if (have && (!target || problem || have.label !== target.label)) {
      await this.tables.exec(`MATCH (x:${ident(have.label)} {${ID}: $id}) DETACH DELETE x`, { id });
      this.nodes.delete(id);
      for (const e of this.incident.get(id) ?? []) {
        edgeIds.add(e);
        this.dropEdge(e);
      }
      this.incident.delete(id);
    }
    if (!target) return;
    if (problem) {
      this.onError({ code: 'kuzu', message: `node ${JSON.stringify(id)} is left out of KuzuDB: ${problem}` });
      return;
    }
    if (!this.nodes.has(id)) await this.tables.nodeTable(target.label);
    const node = `(x:${ident(target.label)} {${ID}: $id`;
    await this.write(target.label, false, this.nodes.get(id), target, { id },
      (props) => `CREATE ${node}${props}})`, `MATCH ${node}})`);
    this.nodes.set(id, target);
  }

  async putEdge(id, target) {
    const have = this.edges.get(id);
    if (have === target) return;
    const endsInKuzu = target && this.nodes.has(target.from) && this.nodes.has(target.to);
    const problem = endsInKuzu && this.problem(target, true);
    if (have && (!endsInKuzu || problem || have.label !== target.label || have.from !== target.from || have.to !== target.to)) {
      await this.tables.exec(`${this.matchEdge(have)} DELETE x`, { id, from: have.from, to: have.to });
      this.dropEdge(id);
    }
    if (!endsInKuzu) return;  // an end is not in KuzuDB: the edge is not either
    if (problem) {
      this.onError({ code: 'kuzu', message: `edge ${JSON.stringify(id)} is left out of KuzuDB: ${problem}` });
      return;
    }
    const from = this.nodes.get(target.from).label;
    const to = this.nodes.get(target.to).label;
    await this.tables.relTable(target.label, from, to);
    const ends = `MATCH (a:${ident(from)} {${ID}: $from}), (b:${ident(to)} {${ID}: $to})`;
    await this.write(target.label, true, this.edges.get(id), target, { id, from: target.from, to: target.to },
      (props) => `${ends} CREATE (a)-[x:${ident(target.label)} {${ID}: $id${props}}]->(b)`, this.matchEdge(target));
    this.edges.set(id, target);
    for (const n of [target.from, target.to]) {
      if (!this.incident.has(n)) this.incident.set(n, new Set());
      this.incident.get(n).add(id);
    }
  }

  dropEdge(id) {
    const e = this.edges.get(id);
    if (!e) return;
    this.edges.delete(id);
    this.incident.get(e.from)?.delete(id);
    this.incident.get(e.to)?.delete(id);
  }

  matchEdge(edge) {
    const label = (n) => ident(this.nodes.get(n).label);
    return `MATCH (:${label(edge.from)} {${ID}: $from})-[x:${ident(edge.label)} {${ID}: $id}]->(:${label(edge.to)} {${ID}: $to})`;
  }

  // Creates the element (no `have`: `create(props)` is the statement) or
  // sets the properties that differ from `have` (`match` finds it). Columns
  // are added, or widened, first.
  async write(label, rel, have, target, params, create, match) {
    const names = [];
    for (const [key, value] of Object.entries(target.properties)) {
      if (have && Object.hasOwn(have.properties, key) && sameValue(have.properties[key], value)) continue;
      const kind = await this.tables.column(label, key, value, (k) => this.rewrite(label, rel, k));
      params[`v${names.length}`] = encode(kind, value);
      names.push(ident(key));
    }
    if (!have) {
      await this.tables.exec(create(names.map((k, i) => `, ${k}: $v${i}`).join('')), params);
      return;
    }
    const sets = names.map((k, i) => `x.${k} = $v${i}`);
    for (const key of Object.keys(have.properties)) if (!Object.hasOwn(target.properties, key)) sets.push(`x.${ident(key)} = NULL`);
    if (sets.length > 0) await this.tables.exec(`${match} SET ${sets.join(', ')}`, params);
  }

  // A column just widened to JSON: every element of the table holding the
  // key gets its value again, as JSON text.
  async rewrite(label, rel, key) {
    for (const [id, el] of rel ? this.edges : this.nodes) {
      if (el.label !== label || !Object.hasOwn(el.properties, key)) continue;
      const v = JSON.stringify(el.properties[key]);
      if (rel) await this.tables.exec(`${this.matchEdge(el)} SET x.${ident(key)} = $v`, { id, from: el.from, to: el.to, v });
      else await this.tables.exec(`MATCH (x:${ident(label)} {${ID}: $id}) SET x.${ident(key)} = $v`, { id, v });
    }
  }

  // Why KuzuDB cannot hold this element as it is, or null. Its names follow
  // the protocol's rule, but KuzuDB compares names ignoring case, keeps node
  // and rel tables in one namespace, and reserves a few property names.
  problem(el, rel) {
    if (!isName(el.label)) return `its label ${JSON.stringify(el.label)} is not a valid name`;
    const clash = this.tables.clash(el.label, rel);
    if (clash) return clash;
    const keys = new Map();
    for (const key of Object.keys(el.properties)) {
      if (!isName(key)) return `its property key ${JSON.stringify(key)} is not a valid name`;
      const folded = key.toLowerCase();
      if (RESERVED.has(folded)) return `KuzuDB reserves the property name ${key}`;
      const other = keys.get(folded) ?? this.tables.columnName(el.label, folded);
      if (other !== undefined && other !== key) return `property keys ${other} and ${key} differ only in case, as KuzuDB column names may not`;
      keys.set(folded, key);
    }
    return null;
  }

  // -- Reading --------------------------------------------------------------------

  /** Runs a read-only Cypher query with parameters; resolves to the rows as plain objects. */
  async query(cypher, params = {}) {
    if (typeof cypher !== 'string') throw new TypeError('query(cypher, params): cypher must be a string');
    const write = writeClause(cypher);
    if (write) {
      throw new Error(`query() only reads the local graph, and ${write} would change it: ` +
        'edit through the client (createNode, setProperty, …) so the server gets the change');
    }
    return this.run(async () => {
      if (this.failure) await this.sync();
      if (this.failure) throw new Error(`the local KuzuDB is out of date: ${this.failure.message}`);
      return (await this.tables.rows(cypher, params)).map(plainValue);
    });
  }

  /** The graph as KuzuDB holds it, values decoded by their column types: {nodes, edges} like snapshot(). */
  graph() {
    return this.run(async () => {
      const graph = { nodes: {}, edges: {} };
      for (const { label, rel, columns } of this.tables.list()) {
        const pick = columns.map(([key], i) => `, x.${ident(key)} AS c${i}`).join('');
        const rows = await this.tables.rows(rel
          ? `MATCH (a)-[x:${ident(label)}]->(b) RETURN x.${ID} AS id, a.${ID} AS f, b.${ID} AS t${pick}`
          : `MATCH (x:${ident(label)}) RETURN x.${ID} AS id${pick}`, {});
        for (const row of rows) {
          const properties = {};
          columns.forEach(([key, kind], i) => {
            if (row[`c${i}`] !== null) properties[key] = decode(kind, plainValue(row[`c${i}`]));
          });
          if (rel) graph.edges[row.id] = { label, from: row.f, to: row.t, properties };
          else graph.nodes[row.id] = { label, properties };
        }
      }
      return graph;
    });
  }

  /** Writes what is queued, then closes the connection and the database (not the kuzu-wasm module). */
  close() {
    this.closed = true;
    return this.run(async () => {
      await this.tables.close();
      await this.conn.close();
      await this.db.close();
    });
  }
}
