// A process editing through clients/js with durable storage, which
// js_storage.test.mjs kills and starts again. It reports on stdout, one JSON
// object a line:
//   {event: 'loaded', version, since, pending: [ids], nodes}   the stored state, before any network
//   {event: 'durable', ids}     its edits are stored (then it waits to be killed)
//   {event: 'settled', version, graph, answers}   nothing pending, history complete (then it exits)
//
//   node js_storage_writer.mjs URL DIR CHANNEL MODE [N]
//
// MODE: hold            report 'loaded', then wait
//       edit N          make N edits at once (the server may be down)
//       edit-unread N   once connected, stop reading the socket, then make
//                       N edits: the server stores them, their acks are never read
//       settle          wait until every stored edit is answered, close, exit
import WebSocket from 'ws';
import { createSyncClient } from '../../clients/js/sync-client.js';

const [url, dir, channel, mode, n = '0'] = process.argv.slice(2);
const report = (event, fields) => process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);

const client = await createSyncClient({ serverUrl: url, channel, clientId: `writer-${channel}`, storage: dir, WebSocket,
  reconnectInterval: 50, maxReconnectInterval: 200, heartbeatInterval: 1000 });
report('loaded', {
  version: client.getServerVersion(),
  since: new URL(client.ws.url).searchParams.get('since'),
  pending: client.getPendingPatches().map((p) => p.id),
  nodes: client.snapshot().nodes,
});

// The server's answers, as read from the socket.
const answers = [];
const receive = client.receive.bind(client);
client.receive = (msg) => {
  if (msg.type === 'patch_response') answers.push(msg.payload);
  return receive(msg);
};

// Polls `pred` (the parent bounds the wait).
const until = (pred) => new Promise((resolve) => {
  const timer = setInterval(() => {
    if (!pred()) return;
    clearInterval(timer);
    resolve();
  }, 20);
});

// Edit i of N: a node every fifth edit, properties on it in between.
function edit(i) {
  const node = `${channel}-n${i - (i % 5)}`;
  if (i % 5 === 0) client.createNode('Item', { i }, node);
  else client.setProperty('node', node, `k${i}`, i);
}

async function editAll(count) {
  const before = new Set(client.getPendingPatches().map((p) => p.id));
  for (let i = 0; i < count; i++) edit(i);
  await client.flush();
  report('durable', { ids: client.getPendingPatches().map((p) => p.id).filter((id) => !before.has(id)) });
}

if (mode === 'edit') {
  await editAll(Number(n));
} else if (mode === 'edit-unread') {
  await until(() => client.isReady());
  await client.whenSynced();
  client.ws._socket.pause();
  await editAll(Number(n));
} else if (mode === 'settle') {
  // Every stored edit resent and answered (confirmed by the history, too).
  const resent = client.getPendingPatches().map((p) => p.id);
  await client.whenSynced();
  await until(() => client.isReady() && client.getPendingPatchCount() === 0 &&
    resent.every((id) => answers.some((a) => a.patchId === id)));
  const { nodes, edges, version } = client.snapshot();
  await client.close();
  report('settled', { version, graph: { nodes, edges }, answers });
  process.exit(0);
}
// hold, edit, edit-unread: wait to be killed (the open socket or its retries keep the process alive).
