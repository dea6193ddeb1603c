// The design syncd replaces, kept as a benchmark baseline: a Node WebSocket
// relay that numbers patches in memory, keeps them in an array and
// broadcasts each one by looping over every other socket. Nothing is durable
// and nothing is validated. It speaks enough of the JSON protocol for
// `syncbench fanout` (patch -> patch_response + patch_broadcast, a
// sync_state on connect and on sync_request).
//
//   node bench/node-relay/relay.mjs [--port 8090]     (or PORT=8090)

import { WebSocketServer, WebSocket } from 'ws';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log('Usage: node relay.mjs [--port N]   (default $PORT or 8090; 0 picks a free port)');
  process.exit(0);
}
const portFlag = args.indexOf('--port');
const port = Number(portFlag >= 0 ? args[portFlag + 1] : process.env.PORT ?? 8090);

const patches = [];
let version = 0;

const send = (ws, type, payload) => ws.send(JSON.stringify({ type, payload }));
const syncState = (ws, fromVersion) =>
  send(ws, 'sync_state', { version, patches: patches.slice(fromVersion), hasMore: false });

const wss = new WebSocketServer({ port });
wss.on('connection', (ws, req) => {
  const since = new URL(req.url, 'http://relay').searchParams.get('since');
  syncState(ws, since === null || since === 'head' ? version : Number(since));
  ws.on('message', (data) => {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return send(ws, 'error', { code: 'invalid_json', message: 'the frame is not valid JSON' });
    }
    if (msg.type === 'sync_request') return syncState(ws, msg.payload?.fromVersion ?? 0);
    if (msg.type !== 'patch') return;
    const patch = { ...msg.payload, serverVersion: ++version };
    patches.push(patch);
    send(ws, 'patch_response', { patchId: patch.id, status: 'accepted', serverVersion: version });
    const frame = JSON.stringify({ type: 'patch_broadcast', payload: patch });
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) client.send(frame);
    }
  });
});
wss.on('listening', () => console.log(`node relay listening on port ${wss.address().port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
