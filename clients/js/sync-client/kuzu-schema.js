// How the local graph maps onto KuzuDB (kuzu-store.js keeps it there):
//
// - A label is a table: a node label a NODE table, an edge label a REL table
//   with a FROM/TO pair for each pair of node labels its edges join.
// - Every table holds the element's id in the column `@id` (the primary key
//   of node tables). The protocol's name rule cannot produce that name, so
//   no property key collides with it.
// - A property key is a column of its label's table, typed by the values
//   seen in it: all strings STRING, all numbers DOUBLE, all booleans
//   BOOLEAN; anything else (null, arrays, objects, or values of mixed types)
//   STRING holding JSON text (kind 'JSON'). An absent property is NULL.
//
// Labels and keys become table and column names, which Cypher cannot take
// as parameters: `ident` lets through only names of the protocol's rule
// (PROTOCOL.md), quoted, so nothing else is ever spliced into a statement.

/** Labels and property keys, as PROTOCOL.md defines them. */
export const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const RULE = '[A-Za-z_][A-Za-z0-9_]{0,63}';

/** The id column of every table. */
export const ID = '`@id`';

/** Property keys KuzuDB keeps for itself (names are compared ignoring case). */
export const RESERVED = new Set(['_id', '_label', '_src', '_dst']);

export const isName = (name) => typeof name === 'string' && NAME.test(name);

/** A label or property key as a Cypher name; throws for anything outside the name rule. */
export function ident(name) {
  if (!isName(name)) throw new TypeError(`${JSON.stringify(name)} is not a label or property key (${RULE}); it cannot name a KuzuDB table or column`);
  return `\`${name}\``;
}

const KINDS = { string: 'STRING', number: 'DOUBLE', boolean: 'BOOLEAN' };

/** The column kind a value asks for. */
export const kindOf = (value) => KINDS[typeof value] ?? 'JSON';
/** The KuzuDB type of a column kind. */
export const columnType = (kind) => (kind === 'JSON' ? 'STRING' : kind);
export const encode = (kind, value) => (kind === 'JSON' ? JSON.stringify(value) : value);
export const decode = (kind, value) => (kind === 'JSON' ? JSON.parse(value) : value);

/**
 * The labels and property keys a patch carries that break the name rule,
 * described; empty when all are valid. The server refuses such a patch too.
 */
export function invalidNames(patch) {
  const data = patch.data !== null && typeof patch.data === 'object' ? patch.data : {};
  const names = [];
  if (data.label !== undefined) names.push(['label', data.label]);
  if (data.properties !== null && typeof data.properties === 'object') {
    for (const key of Object.keys(data.properties)) names.push(['property key', key]);
  }
  if (patch.propertyKey !== undefined) names.push(['property key', patch.propertyKey]);
  return names.filter(([, name]) => !isName(name)).map(([what, name]) => `${what} ${JSON.stringify(name)}`);
}

// Clauses that change the database or the connection. A query holding one
// of these words outside strings, quoted names and comments is refused. A
// word counts whatever precedes it but a letter or an underscore: Cypher
// needs no space between `1` and `SET`, so `\b` would not do.
const WRITES = ['CREATE', 'MERGE', 'SET', 'DELETE', 'DETACH', 'REMOVE', 'DROP', 'ALTER', 'COPY', 'LOAD',
  'INSTALL', 'UNINSTALL', 'ATTACH', 'USE', 'IMPORT', 'EXPORT', 'CHECKPOINT', 'BEGIN', 'COMMIT', 'ROLLBACK',
  'COMMENT', 'TRUNCATE'];
const WRITE_WORD = new RegExp(`(?<![A-Za-z_])(${WRITES.join('|')})(?![A-Za-z0-9_])`, 'i');
// Procedures that only read; any other CALL (procedures that build indexes,
// `CALL option = value` that sets the connection's options) is refused.
const READ_PROCEDURES = new Set(['show_tables', 'table_info', 'show_connection', 'db_version', 'current_setting',
  'show_functions']);
const CALL = /(?<![A-Za-z0-9_])CALL\s+([A-Za-z0-9_]*)\s*(=)?/gi;
const NOT_CODE = /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`|\/\/[^\n]*|\/\*[\s\S]*?\*\//g;

// `cypher` with strings and comments blanked, and each quoted name replaced
// by quoted(its text); one pass, left to right, as the parser reads it.
const strip = (cypher, quoted) => cypher.replace(NOT_CODE, (m) => (m[0] === '`' ? quoted(m.slice(1, -1)) : ' '));

/** Why `cypher` may change the database (the word that does), or null for a read. */
export function writeClause(cypher) {
  const word = strip(cypher, () => ' ').match(WRITE_WORD);
  if (word) return word[1].toUpperCase();
  // Procedure names count quoted or not; one made of other characters is
  // no read procedure either.
  const names = strip(cypher, (name) => (/^[A-Za-z0-9_]+$/.test(name) ? name : '?'));
  for (const [, name, assign] of names.matchAll(CALL)) {
    if (assign || !READ_PROCEDURES.has(name.toLowerCase())) return `CALL ${name || '…'}`;
  }
  return null;
}

/** A row of kuzu-wasm as plain values (it boxes integers as Number objects). */
export function plainValue(value) {
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return value.valueOf();
  if (Array.isArray(value)) return value.map(plainValue);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainValue(v)]));
  }
  return value;
}
