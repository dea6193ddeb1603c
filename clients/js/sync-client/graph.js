// The property graph a channel holds, and the rules syncd checks a patch
// against (PROTOCOL.md, "Operations"): a graph is {nodes: Map, edges: Map}
// of elements, a node {label, properties}, an edge {label, from, to, properties}.
//
// Invariant: an element is frozen, its property values included, and never
// changed in place: an update puts a new element in the map. A graph
// therefore copies as two maps of shared pointers, and an element handed to
// an application stays as it was when handed out.

export const OPS = Object.freeze({
  create_node: 'create_node', createNode: 'create_node',
  update_node: 'update_node', updateNode: 'update_node',
  delete_node: 'delete_node', deleteNode: 'delete_node',
  create_edge: 'create_edge', createEdge: 'create_edge',
  update_edge: 'update_edge', updateEdge: 'update_edge',
  delete_edge: 'delete_edge', deleteEdge: 'delete_edge',
  set_property: 'set_property', setProperty: 'set_property',
  remove_property: 'remove_property', removeProperty: 'remove_property',
  opaque: 'opaque',
});

export const emptyGraph = () => ({ nodes: new Map(), edges: new Map() });

/** A copy sharing the (frozen) elements: O(n) pointers, no element is cloned. */
export const copyGraph = (g) => ({ nodes: new Map(g.nodes), edges: new Map(g.edges) });

/** Freezes a JSON value and everything in it; returns it. */
export function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A frozen copy of a JSON value (undefined stays undefined). */
export const frozenCopy = (v) => (v === undefined ? undefined : deepFreeze(JSON.parse(JSON.stringify(v))));

const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const recordOf = (v) => (isRecord(v) ? v : {});

// Spread and defineProperty create own properties, so a key such as
// `__proto__` (a valid property key) is stored as data, never as a prototype.
function withProperty(properties, key, value) {
  const next = { ...properties };
  if (value === undefined) delete next[key];
  else Object.defineProperty(next, key, { value: frozenCopy(value), enumerable: true, writable: false, configurable: false });
  return Object.freeze(next);
}

function update(map, id, data) {
  const el = map.get(id);
  if (!el) return false;
  const properties = Object.freeze({ ...el.properties, ...frozenCopy(recordOf(data.properties)) });
  map.set(id, Object.freeze({ ...el, ...(data.label === undefined ? {} : { label: data.label }), properties }));
  return true;
}

/** Applies `patch` to `graph`; false if it does not apply (and nothing changed). */
export function applyPatch(graph, patch) {
  const { nodes, edges } = graph;
  const data = recordOf(patch.data);
  switch (OPS[patch.op]) {
    case 'create_node':
      if (nodes.has(patch.nodeId)) return false;
      nodes.set(patch.nodeId, Object.freeze({ label: data.label, properties: frozenCopy(recordOf(data.properties)) }));
      return true;
    case 'update_node':
      return update(nodes, patch.nodeId, data);
    case 'update_edge':
      return update(edges, patch.edgeId, data);
    case 'delete_node':
      if (!nodes.delete(patch.nodeId)) return false;
      for (const [id, e] of edges) if (e.from === patch.nodeId || e.to === patch.nodeId) edges.delete(id);
      return true;
    case 'create_edge':
      if (edges.has(patch.edgeId) || !nodes.has(data.fromNodeId) || !nodes.has(data.toNodeId)) return false;
      edges.set(patch.edgeId, Object.freeze({ label: data.label, from: data.fromNodeId, to: data.toNodeId,
        properties: frozenCopy(recordOf(data.properties)) }));
      return true;
    case 'delete_edge':
      return edges.delete(patch.edgeId);
    case 'set_property':
    case 'remove_property': {
      const map = patch.targetType === 'edge' ? edges : nodes;
      const el = map.get(patch.targetId);
      if (!el) return false;
      const value = OPS[patch.op] === 'set_property' ? patch.propertyValue : undefined;
      map.set(patch.targetId, Object.freeze({ ...el, properties: withProperty(el.properties, patch.propertyKey, value) }));
      return true;
    }
    default:
      return true;  // opaque and unknown ops change no graph
  }
}

/** A graph as plain objects: {nodes: {id: node}, edges: {id: edge}}, elements shared. */
export const plainGraph = (g) => ({ nodes: Object.fromEntries(g.nodes), edges: Object.fromEntries(g.edges) });
