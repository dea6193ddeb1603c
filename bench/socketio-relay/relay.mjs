// The baseline for the Socket.IO fan-out benchmark: what a team would write
// with the socket.io package alone. One process, the in-memory adapter, a
// version counter and a log per room in memory; nothing durable, nothing
// validated beyond what routing needs. It speaks the events of the bridge's
// Socket.IO dialect that fanout.mjs uses:
//
//   sync:join {channel | userId, since?}  joins the room; with `since`, the
//       logged changes after it first; ack {success, channel, timestamp}
//   sync:change change | [changes]        numbers each change, sends the room's
//       other sockets one `sync:changes` (changes[]), acks {changeId, success,
//       timestamp} (an array of acks for an array); a known id is acked
//       {duplicate: true} with its first version
//   sync:get_changes {channel | userId, since, limit?}  {changes, latestTimestamp, hasMore}
//
//   node bench/socketio-relay/relay.mjs [--port 8091]     (or PORT=8091; 0 picks a free port)

import { createServer } from 'node:http';
import { Server } from 'socket.io';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log('Usage: node relay.mjs [--port N]   (default $PORT or 8091; 0 picks a free port)');
  process.exit(0);
}
const portFlag = args.indexOf('--port');
const port = Number(portFlag >= 0 ? args[portFlag + 1] : process.env.PORT ?? 8091);

const rooms = new Map();  // channel -> {version, log: [change], ids: Map(id -> version)}
const room = (channel) => {
  let r = rooms.get(channel);
  if (!r) rooms.set(channel, r = { version: 0, log: [], ids: new Map() });
  return r;
};
const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
const failure = (code, message) => ({ success: false, error: { code, message } });
const channelOf = (p) => (isObject(p) && typeof (p.channel ?? p.userId) === 'string' && (p.channel ?? p.userId)) || null;

const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false, maxHttpBufferSize: 1e6 });
io.on('connection', (socket) => {
  const joined = [];
  const answer = (ack, value) => (typeof ack === 'function' ? ack(value) : value?.success === false && socket.emit('sync:error', value.error));

  socket.on('sync:join', (p, ack) => {
    const channel = channelOf(p);
    if (!channel) return answer(ack, failure('invalid_message', 'sync:join takes {channel} or {userId}'));
    socket.join(channel);
    if (!joined.includes(channel)) joined.push(channel);
    const r = room(channel);
    if (Number.isInteger(p.since) && p.since < r.version) socket.emit('sync:changes', r.log.slice(Math.max(0, p.since)));
    return answer(ack, { success: true, channel, timestamp: r.version });
  });

  socket.on('sync:change', (payload, ack) => {
    const list = Array.isArray(payload) ? payload : [payload];
    const acks = [];
    const out = new Map();  // channel -> changes to relay
    for (const c of list) {
      const channel = isObject(c) ? c.channel ?? (joined.length === 1 ? joined[0] : null) : null;
      if (!isObject(c) || typeof c.id !== 'string' || !channel || !joined.includes(channel)) {
        acks.push({ changeId: c?.id, success: false, timestamp: 0, ...failure('invalid_change', 'a change needs an id and a joined channel') });
        continue;
      }
      const r = room(channel);
      const seen = r.ids.get(c.id);
      if (seen !== undefined) {
        acks.push({ changeId: c.id, success: true, duplicate: true, timestamp: seen });
        continue;
      }
      const stored = { ...c, timestamp: ++r.version, channel };
      r.log.push(stored);
      r.ids.set(c.id, stored.timestamp);
      if (!out.has(channel)) out.set(channel, []);
      out.get(channel).push(stored);
      acks.push({ changeId: c.id, success: true, timestamp: stored.timestamp });
    }
    for (const [channel, changes] of out) socket.to(channel).emit('sync:changes', changes);
    return answer(ack, Array.isArray(payload) ? acks : acks[0]);
  });

  socket.on('sync:get_changes', (p, ack) => {
    const channel = channelOf(p);
    if (!channel || !Number.isInteger(p.since) || p.since < 0) return answer(ack, failure('invalid_message', 'sync:get_changes takes {channel, since, limit?}'));
    const r = room(channel);
    const limit = Number.isInteger(p.limit) && p.limit > 0 ? Math.min(p.limit, 1000) : 1000;
    const changes = r.log.slice(p.since, p.since + limit);
    return answer(ack, { changes, latestTimestamp: changes.at(-1)?.timestamp ?? p.since, hasMore: p.since + changes.length < r.version });
  });

  socket.onAny((name, ...rest) => {
    if (!name.startsWith('sync:') || ['sync:join', 'sync:change', 'sync:get_changes'].includes(name)) return;
    answer(rest.at(-1), failure('unknown_event', `no event ${name}`));
  });
});

httpServer.listen(port, () => console.log(`socket.io relay listening on port ${httpServer.address().port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
