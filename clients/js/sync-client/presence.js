// A channel's presence as the client keeps it: the members, from the
// server's presence_* frames, and the checks on this connection's state.

/** A presence state's limit as the server counts it: bytes of UTF-8 JSON. */
export const MAX_PRESENCE_BYTES = 1024;

/**
 * The members after a presence_* frame, as the `presence` event tells of
 * them: {members, type} when the whole list was replaced, {members, type,
 * member} for a join, update or leave. A new array each time, never changed
 * in place.
 */
export function nextPresence(members, { type, payload }) {
  const id = payload.connectionId;
  const others = () => members.filter((m) => m.connectionId !== id);
  switch (type) {
    case 'presence_state':
      return { members: payload.members, type: 'state' };
    case 'presence_join':
    case 'presence_update': {
      const next = others();
      // In connectedAt order, as the server lists them.
      const at = next.findIndex((m) => m.connectedAt > payload.connectedAt);
      next.splice(at < 0 ? next.length : at, 0, payload);
      return { members: next, type: type === 'presence_join' ? 'join' : 'update', member: payload };
    }
    default:  // presence_leave
      return { members: others(), type: 'leave', member: payload };
  }
}

/** The state as JSON text, or a TypeError / RangeError saying what is wrong with it. */
export function presenceJson(state) {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) {
    throw new TypeError('setPresence: the state must be a JSON object');
  }
  const json = JSON.stringify(state);
  const bytes = new TextEncoder().encode(json).length;
  if (bytes > MAX_PRESENCE_BYTES) {
    throw new RangeError(`setPresence: a presence state is at most ${MAX_PRESENCE_BYTES} bytes of JSON (this one is ${bytes})`);
  }
  return json;
}
