#pragma once
// The page at GET /: a small live graph editor on clients/js (served at
// /sync-client.js). Open it in two windows and edit in either; each window
// picks a name and a colour, shows who else has the channel open (presence)
// and marks the node each of them is editing.

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
  .people { display: flex; gap: .4em; align-items: center; flex-wrap: wrap; font-size: 13px; color: #555; margin-top: .5em; }
  .person { display: inline-flex; align-items: center; gap: .3em; padding: .05em .55em .05em .35em; border-radius: 1em; background: #f3f3f3; }
  .swatch { display: inline-block; width: .75em; height: .75em; border-radius: 50%; background: #999; }
  li .editors { display: inline-flex; gap: .2em; min-width: 1em; }
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
<div class="people">
  <span class="person" title="you"><span class="swatch" id="me-swatch"></span><b id="me" data-testid="me"></b> (you)</span>
  <span id="others-label">here too:</span>
  <span id="others" data-testid="presence"></span>
</div>
<form id="add">
  <input id="label" value="Person" aria-label="label" size="8" pattern="[A-Za-z_][A-Za-z0-9_]{0,63}" required>
  <input id="name" placeholder="name" aria-label="name" data-testid="new-name" required>
  <button data-testid="add">Add node</button>
</form>
<div class="log" id="log" data-testid="log"></div>
<ul id="nodes" data-testid="nodes"></ul>
<p class="state">Open this page in another window to see edits arrive. The page uses
<code>/sync-client.js</code> over <code>ws://HOST/sync?channel=…&amp;presence=1</code>; add <code>?channel=NAME</code> to this page's address for another channel.
The names and colours are each window's presence state; a coloured dot beside a node says who is editing it.</p>
<script type="module">
import { createSyncClient } from '/sync-client.js';

const channel = new URLSearchParams(location.search).get('channel') || 'demo';
const $ = (id) => document.getElementById(id);
$('channel').textContent = channel;

// Who this window is: a random name and colour, kept for the tab's life
// (sessionStorage), so a reload is the same person.
const pick = (list) => list[Math.floor(Math.random() * list.length)];
function identity() {
  try {
    const saved = JSON.parse(sessionStorage.getItem('sync-demo-identity'));
    if (saved?.clientId && saved.name && saved.color) return saved;
  } catch {}
  const me = {
    clientId: `page-${Math.random().toString(36).slice(2, 8)}`,
    name: `${pick(['Brave', 'Calm', 'Clever', 'Eager', 'Gentle', 'Jolly', 'Lucky', 'Quick', 'Quiet', 'Witty'])} ` +
      pick(['Badger', 'Falcon', 'Fox', 'Heron', 'Lynx', 'Otter', 'Owl', 'Panda', 'Seal', 'Wren']),
    color: `hsl(${Math.floor(Math.random() * 360)}, 70%, 45%)`,
  };
  try { sessionStorage.setItem('sync-demo-identity', JSON.stringify(me)); } catch {}
  return me;
}
const me = identity();
$('me').textContent = me.name;
$('me-swatch').style.background = me.color;

const client = await createSyncClient({
  serverUrl: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`,
  channel, clientId: me.clientId, presence: true,
});
let editing = null;  // the node this window is editing
const share = () => client.setPresence({ name: me.name, color: me.color, ...(editing ? { editing } : {}) });
share();

// Everyone else with the channel open (other windows, other clients).
const others = () => client.presence.filter((m) => m.clientId !== me.clientId);
const nameOf = (m) => (typeof m.state?.name === 'string' && m.state.name) || m.clientId || `a ${m.transport} client`;
function swatch(m) {
  const s = document.createElement('span');
  s.className = 'swatch';
  if (typeof m.state?.color === 'string') s.style.background = m.state.color;
  return s;
}
function renderPresence() {
  const list = $('others');
  list.replaceChildren();
  for (const m of others()) {
    const chip = document.createElement('span');
    chip.className = 'person';
    chip.dataset.testid = 'presence-member';
    chip.title = `${m.clientId || 'anonymous'} over ${m.transport}`;
    const name = document.createElement('span');
    name.textContent = nameOf(m);
    chip.append(swatch(m), name);
    list.append(chip);
  }
  $('others-label').textContent = !client.isReady() ? 'offline' : list.children.length ? 'here too:' : 'nobody else here';
  for (const li of $('nodes').children) {
    const marks = li.querySelector('.editors');
    marks.replaceChildren();
    for (const m of others()) {
      if (m.state?.editing !== li.dataset.id) continue;
      const s = swatch(m);
      s.title = `${nameOf(m)} is editing this`;
      marks.append(s);
    }
  }
}

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
      li.innerHTML = '<span class="editors"></span><span class="label"></span><input data-testid="node-name"><button data-testid="delete">Delete</button>';
      const input = li.querySelector('input');
      input.addEventListener('change', (e) => client.setProperty('node', id, 'name', e.target.value));
      input.addEventListener('focus', () => { editing = id; share(); });
      input.addEventListener('blur', () => { if (editing === id) { editing = null; share(); } });
      li.querySelector('button').addEventListener('click', () => client.deleteNode(id));
      list.append(li);
    }
    li.querySelector('.label').textContent = nodes[id].label;
    const input = li.querySelector('input');
    if (document.activeElement !== input) input.value = nodes[id].properties.name ?? '';
  }
  renderPresence();
}

client.onChange(render);
client.on('status', () => render(client.snapshot()));
client.on('presence', renderPresence);
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
