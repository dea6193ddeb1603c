#pragma once
// The page at GET /: what this bridge serves and how to connect.

#include <string_view>

namespace bridge {

inline constexpr std::string_view kDemoPage = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sync-bridge</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}code{background:#f3f3f3;padding:0 .2em}</style>
</head><body>
<h1>sync-bridge</h1>
<p>This bridge speaks the JSON sync protocol over WebSocket and forwards it to syncd over gRPC.</p>
<ul>
<li><code>ws://HOST/sync?channel=NAME&amp;since=VERSION</code> (also <code>/</code>): the JSON protocol
(<code>patch</code>, <code>sync_request</code>, <code>heartbeat</code> in; <code>patch_response</code>,
<code>patch_broadcast</code>, <code>sync_state</code>, <code>error</code> out).</li>
<li><code>GET /healthz</code>, <code>GET /readyz</code>, <code>GET /stats</code>.</li>
</ul>
<p>Try it from this page's console:</p>
<pre><code>const ws = new WebSocket(`ws://${location.host}/sync?channel=demo`);
ws.onmessage = (e) =&gt; console.log(JSON.parse(e.data));
ws.onopen = () =&gt; ws.send(JSON.stringify({type: 'patch', payload: {id: crypto.randomUUID(),
  clientId: 'console', op: 'create_node', nodeId: 'n1', data: {label: 'Person', properties: {name: 'Ada'}}}}));</code></pre>
</body></html>
)html";

}  // namespace bridge
