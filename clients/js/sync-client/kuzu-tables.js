// KuzuTables: the tables and columns a KuzuStore has made (kuzu-schema.js
// says how labels and keys map onto them), and the calls that run
// statements on its connection.
//
// Invariant: `tables` describes exactly the tables and columns KuzuDB holds,
// except after a failed transaction, when the store rebuilds everything
// (dropAll reads the tables from KuzuDB itself).

import { columnType, ident, ID, kindOf } from './kuzu-schema.js';

export class KuzuTables {
  constructor(conn) {
    this.conn = conn;
    this.tables = new Map();      // label -> {rel, columns: Map key -> kind, folded: Map lower-case key -> key, pairs: Set}
    this.folded = new Map();      // lower-case label -> label: KuzuDB table names ignore case
    this.statements = new Map();  // text -> prepared statement; emptied by every schema change
    this.inTransaction = false;
  }

  // -- Statements -------------------------------------------------------------------

  async prepared(text) {
    let ps = this.statements.get(text);
    if (!ps) {
      ps = await this.conn.prepare(text);
      if (!ps.isSuccess()) {
        const message = await ps.getErrorMessage();
        await ps.close();
        throw new Error(message);
      }
      this.statements.set(text, ps);
    }
    return ps;
  }

  /** Runs a statement of the store's (prepared once, kept until the schema changes). */
  async exec(text, params) {
    const result = await this.conn.execute(await this.prepared(text), params);
    await result.close();
  }

  /** Runs a query once and returns its rows as kuzu-wasm gives them. */
  async rows(text, params) {
    const ps = await this.conn.prepare(text);
    try {
      if (!ps.isSuccess()) throw new Error(await ps.getErrorMessage());
      const result = await this.conn.execute(ps, params);
      try {
        return await result.getAllObjects();
      } finally {
        await result.close();
      }
    } finally {
      await ps.close();
    }
  }

  // Statements that take no parameters (schema changes, transaction control).
  async plain(text) {
    const result = await this.conn.query(text);
    await result.close();
  }

  // Prepared statements may be bound to the schema they were made with.
  // Schema changes run between transactions: kuzu-wasm 0.11 crashes
  // committing a transaction that wrote rows of a table and then dropped a
  // column of it.
  async schemaChange(text) {
    await this.forgetStatements();
    if (this.inTransaction) await this.plain('COMMIT');
    await this.plain(text);
    if (this.inTransaction) await this.plain('BEGIN TRANSACTION');
  }

  async forgetStatements() {
    for (const ps of this.statements.values()) await ps.close();
    this.statements.clear();
  }

  async transaction(fn) {
    await this.plain('BEGIN TRANSACTION');
    this.inTransaction = true;
    await fn();
    this.inTransaction = false;
    await this.plain('COMMIT');
  }

  /** Ends a transaction a failure left open; the store rebuilds after it. */
  async rollback() {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    try {
      await this.plain('ROLLBACK');
    } catch {
      // Already rolled back by KuzuDB: nothing left to end.
    }
  }

  // -- Tables -------------------------------------------------------------------------

  /** Drops every table KuzuDB holds (rel tables first: they refer to node tables). */
  async dropAll() {
    await this.forgetStatements();
    this.tables.clear();
    this.folded.clear();
    const all = await this.rows('CALL show_tables() RETURN name, type', {});
    for (const type of ['REL', 'NODE']) {
      for (const t of all) if (t.type === type) await this.plain(`DROP TABLE ${ident(t.name)}`);
    }
  }

  /** Why `label` cannot name a table of this kind, or null. */
  clash(label, rel) {
    const taken = this.folded.get(label.toLowerCase());
    if (taken !== undefined && taken !== label) return `labels ${taken} and ${label} differ only in case, as KuzuDB table names may not`;
    const t = this.tables.get(label);
    if (t && t.rel !== rel) return `label ${label} names both nodes and edges, which KuzuDB keeps in one set of table names`;
    return null;
  }

  /** The column of `label` whose name is `folded` ignoring case, if any. */
  columnName(label, folded) {
    return this.tables.get(label)?.folded.get(folded);
  }

  async nodeTable(label) {
    if (this.tables.has(label)) return;
    await this.schemaChange(`CREATE NODE TABLE ${ident(label)}(${ID} STRING, PRIMARY KEY(${ID}))`);
    this.add(label, false);
  }

  /** Makes sure rel table `label` exists and joins node tables `from` → `to`. */
  async relTable(label, from, to) {
    const pair = `${from} ${to}`;
    const t = this.tables.get(label);
    if (t?.pairs.has(pair)) return;
    if (t) await this.schemaChange(`ALTER TABLE ${ident(label)} ADD FROM ${ident(from)} TO ${ident(to)}`);
    else await this.schemaChange(`CREATE REL TABLE ${ident(label)}(FROM ${ident(from)} TO ${ident(to)}, ${ID} STRING)`);
    (t ?? this.add(label, true)).pairs.add(pair);
  }

  add(label, rel) {
    const t = { rel, columns: new Map(), folded: new Map(), pairs: new Set() };
    this.tables.set(label, t);
    this.folded.set(label.toLowerCase(), label);
    return t;
  }

  /**
   * The kind of column `key` of `label`, made to hold `value`: added if new,
   * widened to JSON if the value does not fit its type. A widened column is
   * empty again: rewrite(key) fills it.
   */
  async column(label, key, value, rewrite) {
    const t = this.tables.get(label);
    const want = kindOf(value);
    const kind = t.columns.get(key);
    if (kind === want || kind === 'JSON') return kind;
    const name = ident(label);
    if (kind !== undefined) await this.schemaChange(`ALTER TABLE ${name} DROP ${ident(key)}`);
    const next = kind === undefined ? want : 'JSON';
    await this.schemaChange(`ALTER TABLE ${name} ADD ${ident(key)} ${columnType(next)}`);
    t.columns.set(key, next);
    t.folded.set(key.toLowerCase(), key);
    if (kind !== undefined) await rewrite(key);
    return next;
  }

  /** Every table: {label, rel, columns: [[key, kind]]}. */
  list() {
    return [...this.tables].map(([label, t]) => ({ label, rel: t.rel, columns: [...t.columns] }));
  }

  close() { return this.forgetStatements(); }
}
