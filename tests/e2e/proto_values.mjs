// google.protobuf.Struct and Value to and from plain JSON, in the form the
// @grpc/proto-loader clients of fault_grpc.mjs use (keepCase: false,
// oneofs: true): camelCase kinds (structValue, listValue, nullValue, ...)
// and a Struct's fields as an object. The loader leaves empty lists and
// structs out, hence the `?? []` and `?? {}`.
export const toValue = (v) => (v === null ? { nullValue: 'NULL_VALUE' }
  : Array.isArray(v) ? { listValue: { values: v.map(toValue) } }
    : typeof v === 'object' ? { structValue: toStruct(v) }
      : { [typeof v === 'number' ? 'numberValue' : typeof v === 'boolean' ? 'boolValue' : 'stringValue']: v });
export const toStruct = (o) => ({ fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toValue(v)])) });
export const fromValue = (v) => (v.kind === 'structValue' ? fromStruct(v.structValue)
  : v.kind === 'listValue' ? (v.listValue.values ?? []).map(fromValue)
    : v.kind === 'nullValue' ? null : v[v.kind]);
export const fromStruct = (s) => Object.fromEntries(Object.entries(s?.fields ?? {}).map(([k, v]) => [k, fromValue(v)]));
