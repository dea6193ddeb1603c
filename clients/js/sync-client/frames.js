// Reads the server's frames (PROTOCOL.md, "JSON WebSocket protocol") and
// checks the fields the client relies on, so that a malformed frame is
// reported instead of throwing in a socket handler or corrupting state.

const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isVersion = (v) => Number.isSafeInteger(v) && v >= 0;
const STATUSES = new Set(['accepted', 'rejected', 'ignored']);

// For each type the client acts on: what is wrong with its payload, or null.
const CHECKS = {
  sync_state: (p) => {
    if (!isRecord(p) || !isVersion(p.version) || !Array.isArray(p.patches)) return 'sync_state needs {version, patches[]}';
    if (!p.patches.every(isRecord)) return 'sync_state patches must be objects';
    // A snapshot's patches rebuild a state; the others are log entries.
    if (!p.snapshot && !p.patches.every((q) => isVersion(q.serverVersion) && q.serverVersion > 0)) {
      return 'sync_state patches need a serverVersion';
    }
    return null;
  },
  patch_broadcast: (p) => (isRecord(p) && isVersion(p.serverVersion) && p.serverVersion > 0 ? null
    : 'patch_broadcast needs a patch with a serverVersion'),
  patch_response: (p) => {
    if (!isRecord(p) || typeof p.patchId !== 'string' || !STATUSES.has(p.status)) {
      return 'patch_response needs {patchId, status: accepted|rejected|ignored}';
    }
    return p.status === 'rejected' || isVersion(p.serverVersion) ? null : `an ${p.status} patch_response needs a serverVersion`;
  },
  error: (p) => (p === null || isRecord(p) ? null : 'error needs an object payload'),
  presence_state: (p) => (isRecord(p) && Array.isArray(p.members) && p.members.every(isRecord) ? null
    : 'presence_state needs {members[]}'),
  presence_join: (p) => (isRecord(p) ? null : 'presence_join needs a member'),
  presence_update: (p) => (isRecord(p) ? null : 'presence_update needs a member'),
  presence_leave: (p) => (isRecord(p) ? null : 'presence_leave needs a member'),
};

const excerpt = (text) => (text.length > 200 ? `${text.slice(0, 200)}…` : text);

/**
 * Decodes one WebSocket message: {msg} for a frame the client can use (a
 * type it does not know included: newer servers may add some), or {error}
 * saying what is wrong with it.
 */
export function decodeFrame(text) {
  if (typeof text !== 'string') return { error: 'a binary frame; the protocol sends JSON text' };
  let msg;
  try {
    msg = JSON.parse(text);
  } catch (e) {
    return { error: `not JSON (${e.message}): ${excerpt(text)}` };
  }
  if (!isRecord(msg) || typeof msg.type !== 'string') return { error: `not a {type, payload} frame: ${excerpt(text)}` };
  const problem = CHECKS[msg.type]?.(msg.payload) ?? null;
  return problem ? { error: `${problem}: ${excerpt(text)}` } : { msg };
}
