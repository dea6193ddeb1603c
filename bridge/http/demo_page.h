#pragma once
// The page at GET /: a small live graph editor on clients/js (served at
// /sync-client.js). Open it in two windows and edit in either.

#include <string_view>

namespace bridge {

inline constexpr std::string_view kDemoPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sync-bridge demo</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #222; }
  header { display: flex; gap: 1.5em; align-items: baseline; flex-wrap: wrap; }
  .state { font-size: 13px; color: #555; }
  .dot { display: inline-block; width: .6em; height: .6em; border-radius: 50%; background: #c33; margin-right: .3em; }
  .dot.on { background: #2a2; }
  form { display: flex; gap: .5em; margin: 1em 0; }
  input { font: inherit; padding: .25em .4em; }
  ul { list-style: none; padding: 0; }
  li { display: flex; gap: .5em; align-items: center; padding: .3em 0; border-bottom: 1px solid #eee; }
  li .label { color: #777; font-size: 13px; min-width: 5em; }
  li input { flex: 1; }
  .log { font-size: 13px; color: #a33; min-height: 1.5em; }
  code { background: #f3f3f3; padding: 0 .2em; }
</style>
</head>
<body>
<header>
  <h1>Live graph</h1>
  <span class="state"><span class="dot" id="dot"></span><span id="conn" data-testid="connection">connecting</span></span>
  <span class="state">channel <b id="channel"></b></span>
  <span class="state">server version <b id="version" data-testid="version">0</b></span>
  <span class="state">pending <b id="pending" data-testid="pending">0</b></span>
</header>
<form id="add">
  <input id="label" value="Person" aria-label="label" size="8" pattern="[A-Za-z_][A-Za-z0-9_]{0,63}" required>
  <input id="name" placeholder="name" aria-label="name" data-testid="new-name" required>
  <button data-testid="add">Add node</button>
</form>
<div class="log" id="log" data-testid="log"></div>
<ul id="nodes" data-testid="nodes"></ul>
<p class="state">Open this page in another window to see edits arrive. The page uses
<code>/sync-client.js</code> over <code>ws://HOST/sync?channel=…</code>; add <code>?channel=NAME</code> to this page's address for another channel.</p>
<script type="module">
import { createSyncClient } from '/sync-client.js';

const channel = new URLSearchParams(location.search).get('channel') || 'demo';
const $ = (id) => document.getElementById(id);
$('channel').textContent = channel;
const client = await createSyncClient({
  serverUrl: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`,
  channel, clientId: `page-${Math.random().toString(36).slice(2, 8)}`,
});

function render({ nodes, version, pending, connected }) {
  $('dot').classList.toggle('on', connected);
  $('conn').textContent = connected ? 'connected' : 'offline (edits wait)';
  $('version').textContent = version;
  $('pending').textContent = pending;
  const list = $('nodes');
  const ids = Object.keys(nodes).sort();
  // Keep the element being edited; rebuild the others.
  for (const li of [...list.children]) if (!nodes[li.dataset.id]) li.remove();
  for (const id of ids) {
    let li = list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
    if (!li) {
      li = document.createElement('li');
      li.dataset.id = id;
      li.innerHTML = '<span class="label"></span><input data-testid="node-name"><button data-testid="delete">Delete</button>';
      li.querySelector('input').addEventListener('change', (e) => client.setProperty('node', id, 'name', e.target.value));
      li.querySelector('button').addEventListener('click', () => client.deleteNode(id));
      list.append(li);
    }
    li.querySelector('.label').textContent = nodes[id].label;
    const input = li.querySelector('input');
    if (document.activeElement !== input) input.value = nodes[id].properties.name ?? '';
  }
}

client.onChange(render);
client.on('status', () => render(client.snapshot()));
client.on('rejected', ({ patch, code, reason }) => { $('log').textContent = `${patch.op} rejected (${code}): ${reason}`; });
client.on('error', ({ code, message }) => { $('log').textContent = `${code}: ${message}`; });
$('add').addEventListener('submit', (e) => {
  e.preventDefault();
  client.createNode($('label').value, { name: $('name').value });
  $('name').value = '';
});
render(client.snapshot());
window.syncClient = client;  // for the console
</script>
</body>
</html>
)html";

}  // namespace bridge
