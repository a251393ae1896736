// The live status page (GET / on the admin listener): one self-contained HTML document, inline CSS
// and script, no external asset. The script reads /api/cluster/v1/stream (server-sent events): a
// whole document, then deltas it applies row by row; the address table shows at most 500 rows of
// its filter and updates only the rows that changed; the cluster's queues are a table of bindings
// by node (each member's summary). A constant; the browser runs the script.
// (The page is a String.raw literal: the script uses no backquote and no dollar-brace.)

export const STATUS_PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vipmta status</title>
<style>
:root { --fg:#1b1f23; --muted:#6a737d; --line:#e1e4e8; --bad:#b31d28; --warn:#b08800; --ok:#22863a; --bg:#fff; --head:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 13px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0; }
header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1em; background: var(--head); border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 1; }
header h1 { font-size: 15px; margin: 0; }
main { padding: 0 1em 2em; }
section { margin-top: 1.2em; }
h2 { font-size: 14px; margin: 0 0 .4em; }
.note { color: var(--muted); font-size: 12px; margin: .2em 0 .5em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.reason { white-space: normal; color: var(--muted); }
th { background: var(--head); font-weight: 600; position: sticky; top: 2.4em; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 1em; }
.kv dt { color: var(--muted); }
.kv dd { margin: 0; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.ok { color: var(--ok); }
tr.self td { font-weight: 600; }
tr.problem td:first-child { border-left: 3px solid var(--bad); }
#conn.live { color: var(--ok); }
#conn.down { color: var(--bad); }
.tools { display: flex; gap: 1em; align-items: center; margin-bottom: .4em; }
.tools input[type=search] { width: 22em; }
</style>
</head>
<body>
<header>
  <h1>vipmta <span id="node">…</span></h1>
  <span id="conn" class="down">connecting</span>
  <span class="note">updated <span id="updated">-</span> · event <span id="seq">-</span></span>
  <span class="note">JSON: <a href="api/cluster/v1/state">api/cluster/v1/state</a></span>
</header>
<main>
<section id="s-cluster">
  <h2>Cluster</h2>
  <dl class="kv" id="cluster"></dl>
  <div id="problems"></div>
  <table id="members"><thead><tr><th>member</th><th class="n">nodeid</th><th class="n">pid</th><th>quorate</th><th>leaving</th><th>drained</th><th class="n">addresses held</th><th>#mmove at</th></tr></thead><tbody></tbody></table>
</section>
<section id="s-addresses">
  <h2>DuraVIPs <span class="note" id="acount"></span></h2>
  <div class="tools">
    <input type="search" id="filter" placeholder="filter: address, binding, owner, state, reason">
    <label><input type="checkbox" id="problemsOnly"> problems only</label>
    <label><input type="checkbox" id="hereOnly"> held by this node</label>
    <button id="more" hidden>show all</button>
    <span class="note" id="shown"></span>
  </div>
  <table id="addresses"><thead><tr><th>address</th><th>binding</th><th>owner</th><th>state</th><th>this node</th><th>preference</th><th>reason</th></tr></thead><tbody></tbody></table>
</section>
<section id="s-cqueues">
  <h2>Queues across the cluster</h2>
  <p class="note">Parts queued (active + deferred + held) per binding and node, from each member's summary (sent when its queue changes, at most every 2 s; its 100 fullest bindings, the rest as "other bindings"); the 100 fullest bindings of the cluster, the others in "other bindings"; redrawn at most every second. Hover a cell for active / deferred / held. Per domain: <code>console --cluster mailq</code>.</p>
  <table id="cqueues"><thead><tr><th>binding group</th><th>binding</th></tr></thead><tbody></tbody></table>
</section>
<section id="s-queues">
  <h2>Queues of this node</h2>
  <p class="note">Bindings with mail on this node (all of them, not only the 100 of its summary), the fullest 200 first.</p>
  <table id="queues"><thead><tr><th>binding group</th><th>binding</th><th class="n">active</th><th class="n">deferred</th><th class="n">held</th></tr></thead><tbody></tbody></table>
</section>
<section id="s-mmove">
  <h2>#mmove traffic of this node</h2>
  <p class="note">Since this node started. Bytes are counted where the mail is received: a peer's bytes sent are in its own page's "received".</p>
  <table id="mmove"><thead><tr><th>peer</th><th class="n">sent messages</th><th class="n">recipients</th><th class="n">duplicates</th><th class="n">failed</th><th class="n">received messages</th><th class="n">received bytes</th></tr></thead><tbody></tbody></table>
</section>
<section id="s-failovers">
  <h2>Recent failovers</h2>
  <p class="note">Owner changes this node saw since start, newest first (the last 200).</p>
  <table id="failovers"><thead><tr><th>time</th><th>address</th><th>from</th><th>to</th><th>reason</th></tr></thead><tbody></tbody></table>
</section>
<section id="s-shaping">
  <h2>Shaping</h2>
  <p class="note">Restrictions in force (rules that fired, operators' suspensions), cluster-wide.</p>
  <table id="shaping"><thead><tr><th>action</th><th>binding</th><th>destination</th><th>until</th><th>rule</th><th>origin</th><th>reason</th></tr></thead><tbody></tbody></table>
</section>
</main>
<script>
'use strict';
var LIMIT = 500;
var QLIMIT = 200;
var CQLIMIT = 100;        // rows of the table of bindings by node (32 members: 3,200 cells)
var CQ_EVERY = 1000;      // that table is redrawn at most this often (members' summaries come every 2 s each)
var S = null;
var A = new Map();        // address -> row
var order = [];           // addresses in the document's order
var trs = new Map();      // address -> its <tr>, for the rows on screen
var pending = false;
var timings = window.statusTimings = { full: 0, delta: 0, rows: 0, cqueues: 0 };
var cqTimer = null, cqLast = 0;
var KEYS = {
  members: function (r) { return r.key; },
  addresses: function (r) { return r.address; },
  queues: function (r) { return r.bindingGroup + '/' + r.binding; },
  nodes: function (r) { return r.node; },
  mmove: function (r) { return r.peer; },
  failovers: function (r) { return String(r.id); },
  shaping: function (r) { return r.key; }
};

function $(id) { return document.getElementById(id); }
function text(v) { return v === null || v === undefined ? '-' : String(v); }
function time(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '-'; }
function yes(v) { return v === null ? '-' : v ? 'yes' : 'no'; }
function cell(tr, v, cls) { var td = document.createElement('td'); td.textContent = text(v); if (cls) td.className = cls; tr.appendChild(td); return td; }
function fill(id, rows, make, none) {
  var t = $(id), tb = t.tBodies[0], f = document.createDocumentFragment();
  rows.forEach(function (r) { f.appendChild(make(r)); });
  if (rows.length === 0 && none) {
    var tr = document.createElement('tr'), td = cell(tr, none, 'note');
    td.colSpan = t.tHead.rows[0].cells.length;
    f.appendChild(tr);
  }
  tb.replaceChildren(f);
}

function renderHead() {
  $('node').textContent = S.node.name + ' ' + S.node.version;
  $('updated').textContent = time(S.generatedAt);
  $('seq').textContent = S.seq;
  document.body.dataset.seq = S.seq;
}

function renderCluster() {
  var c = S.cluster, dl = $('cluster'), f = document.createDocumentFragment();
  // A single node has no members or DuraVIPs to show.
  $('members').hidden = c === null; $('s-addresses').hidden = c === null; $('s-cqueues').hidden = c === null;
  function kv(k, v, cls) { var dt = document.createElement('dt'); dt.textContent = k; var dd = document.createElement('dd'); dd.textContent = v; if (cls) dd.className = cls; f.appendChild(dt); f.appendChild(dd); }
  if (c === null) { kv('cluster', 'no Cluster stanza: a single node'); dl.replaceChildren(f); $('problems').replaceChildren(); fill('members', [], null); return; }
  kv('corosync', c.corosync + (c.stalled ? ' (stalled: holding nothing)' : ''), c.corosync === 'connected' && !c.stalled ? 'ok' : 'bad');
  kv('quorum', c.quorate ? 'quorate' : 'NOT quorate', c.quorate ? 'ok' : 'bad');
  kv('view', c.viewId === null ? '-' : '#' + c.viewId + ', ' + S.members.length + ' member(s), ' + (c.viewComplete ? 'complete' : 'announces pending') + ', stable since ' + time(c.viewStableSince) + (c.mature === null ? '' : c.mature ? ', mature' : ', not mature yet'));
  kv('configuration', c.configConsistent === null ? '-' : c.configConsistent ? 'the same on every member' : 'DIFFERS between members', c.configConsistent === false ? 'warn' : '');
  var n = c.counts;
  kv('addresses', n.addresses + ': ' + n.owned + ' owned, ' + n.orphan + ' orphan, ' + n.broken + ' BROKEN, ' + n.unsafe + ' UNSAFE, ' + n.conflict + ' in conflict', n.orphan + n.broken + n.unsafe + n.conflict > 0 ? 'warn' : '');
  if (c.leaving) kv('this node', 'leaving (planned shutdown)', 'warn');
  if (c.drained) kv('this node', 'DRAINED: ' + (c.queueLeft === null ? 'its queue moves to the others' : c.queueLeft === 0 ? 'no mail left here, it may be stopped' : c.queueLeft + ' queued part(s) left to move'), 'warn');
  dl.replaceChildren(f);
  var p = $('problems');
  p.replaceChildren();
  c.problems.forEach(function (t) { var d = document.createElement('div'); d.className = 'warn'; d.textContent = t; p.appendChild(d); });
}

function queued(n) { return n.active + n.deferred + n.hold; }
function nodeQueue(name) { for (var i = 0; i < S.nodes.length; i++) if (S.nodes[i].node === name) return S.nodes[i]; return null; }
/** A drained member's progress, from its queue summary. */
function drainText(m) {
  if (!m.drained) return yes(m.drained);
  var q = m.node === null ? null : nodeQueue(m.node);
  if (q === null) return 'drained: queue not known yet';
  var n = queued(q);
  return n === 0 ? 'drained: empty, may be stopped' : 'drained: ' + n + ' left to move';
}
function renderMembers() {
  fill('members', S.members, function (m) {
    var tr = document.createElement('tr');
    if (m.self) tr.className = 'self';
    cell(tr, (m.node === null ? '(not announced)' : m.node) + (m.self ? ' (this node)' : ''));
    cell(tr, m.nodeId, 'n'); cell(tr, m.pid, 'n');
    cell(tr, yes(m.quorate), m.quorate === false ? 'bad' : ''); cell(tr, yes(m.leaving), m.leaving ? 'warn' : '');
    cell(tr, drainText(m), m.drained ? 'warn drain' : 'drain');
    cell(tr, m.load, 'n'); cell(tr, m.mmove);
    return tr;
  });
}

function problem(a) { return a.state !== 'owned' || a.unsafe || a.conflict || a.error !== undefined; }
function stateText(a) { return a.state + (a.unsafe ? ', UNSAFE' : '') + (a.conflict ? ', in conflict' : ''); }
function matches(a, q, po, ho) {
  if (po && !problem(a)) return false;
  if (ho && a.here === null) return false;
  if (q === '') return true;
  return (a.address + ' ' + text(a.binding) + ' ' + text(a.owner) + ' ' + stateText(a) + ' ' + a.reason).toLowerCase().indexOf(q) >= 0;
}
function setRow(tr, a) {
  var c = tr.cells;
  c[0].textContent = a.address; c[1].textContent = text(a.binding);
  c[2].textContent = text(a.owner); c[2].className = 'owner' + (a.owner === null ? ' bad' : '');
  c[3].textContent = stateText(a); c[3].className = a.state === 'owned' ? (a.unsafe || a.conflict ? 'warn' : 'ok') : 'bad';
  c[4].textContent = a.here === null ? '' : a.here + (a.error ? ' (' + a.error + ')' : ''); c[4].className = a.error ? 'bad' : '';
  c[5].textContent = text(a.preference); c[6].textContent = a.reason;
  tr.className = problem(a) ? 'problem' : '';
}
function newRow(a) {
  var tr = document.createElement('tr');
  tr.dataset.key = a.address;
  for (var i = 0; i < 7; i++) tr.appendChild(document.createElement('td'));
  tr.cells[6].className = 'reason';
  setRow(tr, a);
  return tr;
}
function renderAddresses() {
  pending = false;
  var t0 = performance.now();
  var q = $('filter').value.trim().toLowerCase(), po = $('problemsOnly').checked, ho = $('hereOnly').checked;
  var f = document.createDocumentFragment(), next = new Map(), matching = 0;
  for (var i = 0; i < order.length; i++) {
    var a = A.get(order[i]);
    if (!matches(a, q, po, ho)) continue;
    matching++;
    if (next.size >= LIMIT) continue;
    var tr = trs.get(a.address);
    if (tr === undefined) tr = newRow(a); else setRow(tr, a);
    next.set(a.address, tr);
    f.appendChild(tr);
  }
  trs = next;
  $('addresses').tBodies[0].replaceChildren(f);
  $('acount').textContent = order.length + ' address(es)';
  $('shown').textContent = matching > next.size ? 'showing ' + next.size + ' of ' + matching + ' matching' : matching + ' matching';
  $('more').hidden = matching <= next.size;
  timings.rows = performance.now() - t0;
}
function later() { if (!pending) { pending = true; requestAnimationFrame(renderAddresses); } }

function renderQueues() {
  var t = { active: 0, deferred: 0, hold: 0 };
  S.queues.forEach(function (r) { t.active += r.active; t.deferred += r.deferred; t.hold += r.hold; });
  // The fullest first; at most QLIMIT rows (a node may queue for thousands of bindings).
  var rows = S.queues.slice().sort(function (a, b) { return (b.active + b.deferred + b.hold) - (a.active + a.deferred + a.hold); }).slice(0, QLIMIT);
  var more = S.queues.length - rows.length;
  if (more > 0) rows.push({ bindingGroup: '(' + more + ' more bindings with mail)', binding: '', active: null, deferred: null, hold: null });
  rows.push({ bindingGroup: S.queues.length === 0 ? 'no mail queued' : 'total', binding: '', active: t.active, deferred: t.deferred, hold: t.hold });
  fill('queues', rows, function (r) {
    var tr = document.createElement('tr');
    cell(tr, r.bindingGroup); cell(tr, r.binding); cell(tr, r.active, 'n'); cell(tr, r.deferred, 'n'); cell(tr, r.hold, 'n');
    return tr;
  });
}
/** Bindings by node: a row per binding any member names, a column per member, and the totals. */
function renderClusterQueues() {
  var t0 = performance.now();
  cqLast = Date.now();
  if (cqTimer !== null) { clearTimeout(cqTimer); cqTimer = null; }
  var t = $('cqueues'), nodes = S.nodes.slice().sort(function (a, b) { return a.node < b.node ? -1 : a.node > b.node ? 1 : 0; });
  var head = document.createElement('tr');
  ['binding group', 'binding'].forEach(function (h) { var th = document.createElement('th'); th.textContent = h; head.appendChild(th); });
  nodes.forEach(function (n) {
    var th = document.createElement('th'); th.className = 'n' + (n.drained ? ' warn' : '');
    th.textContent = n.node + (n.self ? ' (this node)' : '') + (n.drained ? ' (drained)' : ''); th.title = 'as of ' + time(n.at);
    head.appendChild(th);
  });
  var th = document.createElement('th'); th.className = 'n'; th.textContent = 'total'; head.appendChild(th);
  t.tHead.replaceChildren(head);
  var rows = new Map();
  nodes.forEach(function (n, i) {
    n.bindings.forEach(function (b) {
      var k = b.bindingGroup + '/' + b.binding, r = rows.get(k);
      if (r === undefined) rows.set(k, r = { key: k, bindingGroup: b.bindingGroup, binding: b.binding, cells: [], sum: 0 });
      r.cells[i] = b; r.sum += queued(b);
    });
  });
  var sorted = Array.from(rows.values()).sort(function (a, b) { return b.sum - a.sum || (a.key < b.key ? -1 : 1); });
  var list = sorted.slice(0, CQLIMIT), rest = sorted.slice(CQLIMIT);
  // "other bindings": each member's own aggregate, plus the rows this table leaves out (the emptiest).
  var other = { key: '(other)', bindingGroup: rest.length > 0 ? 'other bindings (' + rest.length + ' not shown here)' : 'other bindings', binding: '', cells: [], sum: 0 };
  nodes.forEach(function (n, i) {
    var c = { active: n.other.active, deferred: n.other.deferred, hold: n.other.hold };
    rest.forEach(function (r) { var x = r.cells[i]; if (x) { c.active += x.active; c.deferred += x.deferred; c.hold += x.hold; } });
    other.cells[i] = c; other.sum += queued(c);
  });
  if (other.sum > 0) list.push(other);
  var totals = { key: '(total)', bindingGroup: nodes.length === 0 ? 'no member has told its queue yet' : 'total', binding: '', cells: nodes, sum: 0, total: true };
  nodes.forEach(function (n) { totals.sum += queued(n); });
  list.push(totals);
  fill('cqueues', list, function (r) {
    var tr = document.createElement('tr'); tr.dataset.key = r.key;
    if (r.total) tr.className = 'self';
    cell(tr, r.bindingGroup); cell(tr, r.binding);
    nodes.forEach(function (n, i) {
      var c = r.cells[i], td = cell(tr, c ? queued(c) : '', 'n');
      td.dataset.node = n.node;
      if (c) td.title = n.node + ': active ' + c.active + ', deferred ' + c.deferred + ', held ' + c.hold;
    });
    cell(tr, r.sum, 'n');
    return tr;
  });
  timings.cqueues = performance.now() - t0;
}
/** A delta's new summaries: the table at most every CQ_EVERY ms (the members' rows at once). */
function laterClusterQueues() {
  if (cqTimer !== null) return;
  cqTimer = setTimeout(renderClusterQueues, Math.max(0, cqLast + CQ_EVERY - Date.now()));
}
function renderMmove() {
  fill('mmove', S.mmove, function (p) {
    var tr = document.createElement('tr');
    cell(tr, p.peer); cell(tr, p.sent.messages, 'n'); cell(tr, p.sent.recipients, 'n'); cell(tr, p.sent.duplicates, 'n');
    cell(tr, p.sent.failed, p.sent.failed > 0 ? 'n warn' : 'n'); cell(tr, p.received.messages, 'n'); cell(tr, p.received.bytes, 'n');
    return tr;
  }, 'no mail moved to or from another node yet');
}
function renderFailovers() {
  fill('failovers', S.failovers.slice().reverse(), function (f) {
    var tr = document.createElement('tr');
    cell(tr, time(f.at)); cell(tr, f.address); cell(tr, f.from); cell(tr, f.to, f.to === null ? 'bad' : ''); cell(tr, f.reason, 'reason');
    return tr;
  }, 'no owner change since this node started');
}
function renderShaping() {
  fill('shaping', S.shaping, function (r) {
    var tr = document.createElement('tr');
    var what = r.action === 'throttle' && r.rate ? 'throttle ' + r.rate.count + '/' + (r.rate.periodMs / 1000) + 's' : r.action === 'reduce_connections' ? 'connections ' + r.connections : r.action;
    cell(tr, what); cell(tr, r.binding === null ? 'every binding' : r.binding); cell(tr, r.destination); cell(tr, time(r.until)); cell(tr, r.rule); cell(tr, r.origin); cell(tr, r.reason, 'reason');
    return tr;
  }, 'none');
}
var RENDER = { members: renderMembers, nodes: function () { laterClusterQueues(); renderMembers(); }, queues: renderQueues, mmove: renderMmove, failovers: renderFailovers, shaping: renderShaping };

function onState(s) {
  var t0 = performance.now();
  S = s;
  A = new Map(); order = [];
  s.addresses.forEach(function (a) { A.set(a.address, a); order.push(a.address); });
  renderHead(); renderCluster();
  Object.keys(RENDER).forEach(function (k) { RENDER[k](); });
  renderClusterQueues();
  renderAddresses();
  timings.full = performance.now() - t0;
}

function replaceRows(list, key, up, rm) {
  var idx = new Map();
  list.forEach(function (r, i) { idx.set(key(r), i); });
  var gone = new Set(rm || []);
  (up || []).forEach(function (r) { var i = idx.get(key(r)); if (i === undefined) list.push(r); else list[i] = r; });
  return gone.size === 0 ? list : list.filter(function (r) { return !gone.has(key(r)); });
}

function onDelta(d) {
  if (S === null) return;
  var t0 = performance.now();
  S.seq = d.seq; S.generatedAt = d.generatedAt;
  if (d.node !== undefined) S.node = d.node;
  if (d.cluster !== undefined) { S.cluster = d.cluster; }
  var up = d.upsert || {}, rm = d.remove || {};
  Object.keys(RENDER).forEach(function (k) {
    if (up[k] === undefined && rm[k] === undefined) return;
    S[k] = replaceRows(S[k], KEYS[k], up[k], rm[k]);
    RENDER[k]();
  });
  if (up.addresses !== undefined || rm.addresses !== undefined) {
    var q = $('filter').value.trim().toLowerCase(), po = $('problemsOnly').checked, ho = $('hereOnly').checked;
    (up.addresses || []).forEach(function (a) {
      var had = A.get(a.address);
      A.set(a.address, a);
      if (had === undefined) { order.push(a.address); later(); return; }
      var tr = trs.get(a.address);
      if (tr !== undefined && matches(a, q, po, ho)) setRow(tr, a);
      else if (tr !== undefined || matches(a, q, po, ho)) later();
    });
    (rm.addresses || []).forEach(function (k) { A.delete(k); later(); });
    if (rm.addresses) order = order.filter(function (k) { return A.has(k); });
  }
  if (d.cluster !== undefined || up.members !== undefined || rm.members !== undefined) renderCluster();
  renderHead();
  timings.delta = performance.now() - t0;
}

['filter', 'problemsOnly', 'hereOnly'].forEach(function (id) { $(id).addEventListener('input', function () { LIMIT = 500; later(); }); });
$('more').addEventListener('click', function () { LIMIT = Infinity; later(); });

function connect() {
  var es = new EventSource('api/cluster/v1/stream');
  es.addEventListener('state', function (e) { onState(JSON.parse(e.data)); });
  es.addEventListener('delta', function (e) { onDelta(JSON.parse(e.data)); });
  es.onopen = function () { $('conn').textContent = 'live'; $('conn').className = 'live'; };
  es.onerror = function () { $('conn').textContent = 'reconnecting'; $('conn').className = 'down'; };
}
connect();
</script>
</body>
</html>
`;
