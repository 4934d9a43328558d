// app.js - the dashboard page: wires the model, the tree view, the detail
// panel, the summary header and the event stream together.
//
// Loading without losing events: the stream is opened first, and the tree is
// fetched only once it is live, so every change after the snapshot arrives as
// an event; events that come while the snapshot loads wait in a buffer and
// are applied on top of it (the model's updates are monotonic, so an event
// older than the snapshot changes nothing). A gap (the ring overwrote events
// we had not read) or a server that restarted (a new runtime: ids start over)
// means a full reload the same way.

import { api } from './api.js';
import { TreeModel, Loader, STATES, wallMs, formatDuration } from './model.js';
import { TreeView } from './tree.js';
import { mountDetail } from './detail.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const READY_POLL_MS = 3000;
const FAILURE_WINDOW_MS = 60000;
const RATE_WINDOW_S = 5;

const model = new TreeModel();
const treeEl = $('tree');
const loader = new Loader(model, api, () => {
  adoptOrphans();
  view.requestRender();
}, () => stream.lastSeq);
// Below 760 px the panels stack (app.css): the detail is under the tree,
// out of sight, so opening a node from the tree scrolls down to it.
const stacked = window.matchMedia('(max-width: 760px)');
const view = new TreeView(treeEl, model, {
  onOpen: (id) => {
    openNode(id);
    if (stacked.matches) $('detail').scrollIntoView({ block: 'start', behavior: 'smooth' });
  },
  onExpand: (id) => loader.prioritize(id),
});
let timeline = null;
const detail = mountDetail($('detail'), {
  api,
  onSelect: (id) => openNode(id),
  onClose: () => setHash(null),
  onFocusTimeline: (id) => {
    if (timeline) {
      timeline.focus(id);
      $('timeline').scrollIntoView({ block: 'nearest' });
    }
  },
});

// --- the event stream and (re)loading --------------------------------------

const stream = {
  ready: false,                  // the snapshot is in: events apply at once
  buffer: [],                    // events that came while it loaded
  everLive: false,
  rootCreated: null,             // the runtime's identity: its root's creation time
  lastSeq: 0,
  lastEventMs: null,             // time of the newest event applied, for the lag
  reloading: null,
  again: false,                  // a gap came during a reload: reload once more
};

function onEvent(ev) {
  stats.received++;
  if (ev.type === 'gap') {
    // A reload under way may have asked for its snapshot before the events
    // the gap lost: one more follows it.
    if (stream.reloading) stream.again = true;
    else reload();
    return;
  }
  if (ev.type === 'failed') noteFailure(ev.node_id, wallMs(ev.time));
  if (!stream.ready) {
    stream.buffer.push(ev);
    return;
  }
  apply(ev);
}

function apply(ev) {
  if (!model.applyEvent(ev)) keepOrphan(ev);
  detail.onEvent(ev);
  stream.lastSeq = ev.seq;
  stream.lastEventMs = wallMs(ev.time);
  view.requestRender();
}

// While the loader fills the tree, an event can name a node whose parent
// is not in the model yet. Such events wait here until the parent comes:
// the answer that brought it includes every event up to its loadedSeq, so
// older ones are dropped (applied, a node created and evicted since would
// come back as a ghost) and newer ones applied. Once the loader is idle,
// what is left belongs to nodes that are gone.
const MAX_ORPHANS = 50000;
let orphans = [];

function keepOrphan(ev) {
  if (loader.loading && ev.name != null && orphans.length < MAX_ORPHANS) orphans.push(ev);
}

function adoptOrphans() {
  if (orphans.length === 0) return;
  orphans = orphans.filter((ev) => {
    const parent = model.nodes.get(ev.parent_id);
    if (!parent) return true;
    if (ev.seq > parent.loadedSeq) model.applyEvent(ev);
    return false;
  });
  if (!loader.loading) orphans = [];
}

function onStatus(status) {
  const el = $('conn-status');
  el.textContent = status;
  el.dataset.status = status;
  if (status !== 'live') return;
  if (!stream.everLive) {
    stream.everLive = true;
    reload();
  } else {
    checkSameServer();
  }
  readyAsked = 0;
}

// Loads the whole tree again; events that arrive meanwhile are buffered.
// Concurrent calls share one reload.
function reload() {
  if (stream.reloading) return stream.reloading;
  stream.ready = false;
  stream.buffer = [];
  orphans = [];
  // The loader stamps what it brings with this seq; after a server restart
  // the old runtime's seqs mean nothing (the new one counts from 1 again).
  stream.lastSeq = 0;
  setStatus('loading…');
  stream.reloading = (async () => {
    for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
      try {
        await loader.reload();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, delay));  // the server is not answering yet
      }
    }
    stream.rootCreated = loader.rootCreated;
    seedFailures();
    stream.ready = true;
    const buffered = stream.buffer;
    stream.buffer = [];
    for (const ev of buffered) apply(ev);
    stream.reloading = null;
    retention.evicted = null;
    followEvictions();
    view.requestRender();
    firstRender();
    updateSummary();             // uptime and failures now, not at the next tick
    readyAsked = 0;
    updateReady();
    if (stream.again) {
      stream.again = false;
      reload();
    }
  })();
  return stream.reloading;
}

// After a reconnect: the browser resumed the stream with Last-Event-ID, which
// is all we need if this is the same runtime. If the server restarted, its
// ids mean other nodes now: hold events back and start over.
async function checkSameServer() {
  if (stream.reloading) return;  // a reload is under way: it starts from now anyway
  stream.ready = false;
  let created = null;
  try {
    const t = await api.get('/api/v1/tree?depth=0');
    created = t.root.created;
  } catch {
    /* not answering: the reload below retries */
  }
  if (created !== null && created === stream.rootCreated) {
    stream.ready = true;
    const buffered = stream.buffer;
    stream.buffer = [];
    for (const ev of buffered) apply(ev);
  } else {
    reload();
  }
  if (detail.id !== null) detail.show(detail.id);
}

// A restart event does not say the new count: fetch the node (coalesced).
const stale = new Set();
let staleTimer = 0;
model.onStale = (id) => {
  stale.add(id);
  if (!staleTimer) staleTimer = setTimeout(refreshStale, 200);
};
async function refreshStale() {
  staleTimer = 0;
  const ids = [...stale];
  stale.clear();
  for (const id of ids) {
    try {
      model.upsert(await api.get(`/api/v1/nodes/${id}`));
    } catch {
      /* gone or unreachable: nothing to correct */
    }
  }
  view.requestRender();
}

// Finished nodes leave the server's retention silently (no event). Its
// counter of evictions (/metrics) says how many went since we last looked;
// the oldest finished go first there, so the page drops as many of its own
// oldest. Evictions from before the snapshot are in the baseline.
const retention = { evicted: null };
const EVICTED_RE = /^arbor_nodes_evicted_total (\d+)\s*$/m;
async function followEvictions() {
  let text;
  try {
    text = await api.text('/metrics');
  } catch {
    return;
  }
  const m = EVICTED_RE.exec(text);
  if (!m || !stream.ready) return;
  const evicted = Number(m[1]);
  if (retention.evicted !== null && evicted > retention.evicted) {
    model.evictOldest(evicted - retention.evicted);
    view.requestRender();
  }
  retention.evicted = evicted;
}

// --- first render and deep links -------------------------------------------

let rendered = false;
function firstRender() {
  if (rendered) return;
  rendered = true;
  view.afterRender = () => {
    view.afterRender = onFrame;
    performance.mark('arbor-first-render');
    document.documentElement.dataset.firstRenderMs = String(Math.round(performance.now()));
    onFrame();
  };
  openFromHash();
  if (!view.selected && model.rootId !== null) view.select(model.rootId, { scroll: false });
}

let countsPainted = -1;
function onFrame() {
  // The counts change with the tree, so they are painted with it: in the
  // same frame as the rows, never a timer's tick behind them.
  if (model.changed !== countsPainted) {
    countsPainted = model.changed;
    for (const s of STATES) $(`count-${s}`).textContent = String(model.counts[s]);
  }
  // For the benchmark and the curious: how far behind the newest event the
  // view is when it paints (stays small when it keeps up).
  if (stream.lastEventMs !== null) treeEl.dataset.lagMs = String(Math.max(0, Date.now() - stream.lastEventMs));
  treeEl.dataset.lastSeq = String(stream.lastSeq);
  updateTreeStatus();
  if (!timelineStarted && stream.ready && !loader.loading) mountTimeline();
}

function hashId() {
  const m = /^#\/node\/(\d+)$/.exec(location.hash);
  return m ? Number(m[1]) : null;
}

function setHash(id) {
  const want = id === null ? location.pathname + location.search : `#/node/${id}`;
  if (id === null ? location.hash !== '' : location.hash !== want) history.replaceState(null, '', want);
}

function openFromHash() {
  const id = hashId();
  if (id !== null && id !== detail.id) openNode(id);
}

// Selects a node everywhere: the tree's cursor, the detail panel, the URL.
function openNode(id) {
  view.select(id, { center: true });
  detail.show(id);
  setHash(id);
}

window.addEventListener('hashchange', openFromHash);

// --- the summary header ----------------------------------------------------

const stats = { received: 0, samples: [] };
const failures = new Map();      // node id -> when it failed (ms); one per node

function noteFailure(id, ms) {
  if (!failures.has(id)) failures.set(id, ms ?? Date.now());
}

// Failures the snapshot shows from the last minute (the stream only tells
// those after it opened).
function seedFailures() {
  const since = Date.now() - FAILURE_WINDOW_MS;
  for (const rec of model.nodes.values()) {
    if (rec.outcome !== 'FAILED' && !rec.error) continue;
    const t = rec.state === 'FINISHED' ? rec.since : null;
    if (t !== null && t >= since) noteFailure(rec.id, t);
  }
}

function updateSummary(tick = false) {
  const now = Date.now();
  for (const [id, t] of failures) if (t < now - FAILURE_WINDOW_MS) failures.delete(id);
  $('failures-1m').textContent = String(failures.size);
  $('failures-1m').parentElement.classList.toggle('alert', failures.size > 0);

  if (tick) {                     // one sample a second: the window is RATE_WINDOW_S s
    stats.samples.push([now, stats.received]);
    while (stats.samples.length > RATE_WINDOW_S + 1) stats.samples.shift();
    const [t0, n0] = stats.samples[0];
    const rate = now > t0 ? ((stats.received - n0) * 1000) / (now - t0) : 0;
    $('events-rate').textContent = rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
  }

  const root = model.nodes.get(model.rootId);
  $('uptime').textContent = root && root.created !== null ? formatDuration(now - root.created) : '–';
}

// Readiness is the server's (GET /readyz), but a 503 is logged by the
// browser as a failed resource on the console, which an operator (and the
// page's tests) would take for a fault of the page. So the model answers
// first, with /readyz's own rule (every service and supervisor STARTED, or
// FINISHED OK; subtrees of finished nodes skipped); only when it sees
// nothing waiting is the server asked, and its answer is what shows.
function waitingInModel() {
  const waiting = [];
  const root = model.nodes.get(model.rootId);
  const stack = root ? [root] : [];
  while (stack.length) {
    const rec = stack.pop();
    if ((rec.kind === 'service' || rec.kind === 'supervisor') && rec.state !== 'STARTED' &&
        !(rec.state === 'FINISHED' && rec.outcome === 'OK')) waiting.push(rec.id);
    if (rec.state === 'FINISHED') continue;
    for (const c of rec.children) {
      const cr = model.nodes.get(c);
      if (cr) stack.push(cr);
    }
  }
  return waiting;
}

let readyAsked = 0;
async function updateReady() {
  if (!stream.ready) return;
  const waiting = waitingInModel();
  if (waiting.length > 0) {
    showReady(false, waiting.length);
    return;
  }
  if (Date.now() - readyAsked < READY_POLL_MS) return;
  readyAsked = Date.now();
  try {
    await api.get('/readyz');
    showReady(true, 0);
  } catch (e) {
    if (e.status === 503) {
      const b = e.body || {};
      showReady(false, (b.not_started ? b.not_started.length : 0) + (b.more || 0));
      // The server sees a waiting node the page does not hold (one the page
      // dropped, or a race with an event in flight): ask again only after
      // 15 s, not every few seconds (each 503 is a console error).
      readyAsked = Date.now() + 15000 - READY_POLL_MS;
    } else {
      showReady(null, 0);
    }
  }
}

function showReady(ready, waiting) {
  const el = $('ready');
  el.dataset.ready = ready === null ? 'unknown' : String(ready);
  el.textContent = ready === null ? '? readiness unknown' : ready ? '✓ ready' : `✗ not ready (${waiting})`;
  el.title = ready === false ? `${waiting} services or supervisors not STARTED (the /readyz rule)` : 'GET /readyz';
}

function setStatus(text) {
  document.getElementById('tree-status').textContent = text;
}

function updateTreeStatus() {
  const rows = view.flat.length;
  let text = `${model.size} nodes`;
  if (view.matcher) text += rows ? ` · ${view.flat.filter((r) => r.match).length} match` : ' · nothing matches';
  if (loader.loading) text += ' · loading more…';
  setStatus(text);
}

// --- controls: search, filters, keyboard, token -----------------------------

function applyFilter() {
  view.setFilter({ text: $('search').value, state: $('filter-state').value, kind: $('filter-kind').value });
}
$('search').addEventListener('input', applyFilter);
$('filter-state').addEventListener('change', applyFilter);
$('filter-kind').addEventListener('change', applyFilter);
document.getElementById('btn-expand-all').addEventListener('click', () => view.expandAll());
document.getElementById('btn-collapse-all').addEventListener('click', () => view.collapseAll());

function typing(target) {
  return target instanceof HTMLInputElement || target instanceof HTMLSelectElement ||
    target instanceof HTMLTextAreaElement || (target && target.isContentEditable);
}

// "/" searches, Escape steps back (out of the search box, then closes the
// detail); open dialogs handle their own Escape.
document.addEventListener('keydown', (e) => {
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  if (document.querySelector('dialog[open]')) return;
  if (e.key === '/' && !typing(e.target)) {
    e.preventDefault();
    $('search').focus();
    $('search').select();
  } else if (e.key === 'Escape') {
    if (e.target === $('search')) {
      if ($('search').value) {
        $('search').value = '';
        applyFilter();
      }
      treeEl.focus();
    } else if (detail.id !== null) {
      detail.close();
      setHash(null);
      treeEl.focus();
    }
  } else if (e.key === 'ArrowDown' && e.target === $('search')) {
    e.preventDefault();
    view.focusFirstMatch();
  }
});

// The token prompt: resolves with the token, or null when dismissed.
api.askToken = () => new Promise((resolve) => {
  const dialog = $('token-dialog');
  const input = $('token-input');
  const save = $('token-save');
  const cancel = $('token-cancel');
  let token = null;
  const onSave = () => {
    token = input.value.trim() || null;
    dialog.close();
  };
  const onKey = (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      onSave();
    }
  };
  const onCancel = () => dialog.close();
  const onClose = () => {
    save.removeEventListener('click', onSave);
    cancel.removeEventListener('click', onCancel);
    input.removeEventListener('keydown', onKey);
    dialog.removeEventListener('close', onClose);
    input.value = '';
    resolve(token);
  };
  save.addEventListener('click', onSave);
  cancel.addEventListener('click', onCancel);
  input.addEventListener('keydown', onKey);
  dialog.addEventListener('close', onClose);
  input.value = '';
  dialog.showModal();
  input.focus();
});

// --- start ------------------------------------------------------------------

let second = 0;
setInterval(() => {
  // While the stream is down the server is likely down too: no polling
  // into the void (each refused request is a console error).
  const live = $('conn-status').dataset.status === 'live';
  if (live && ++second % 2 === 0) followEvictions();
  updateSummary(true);
  if (live) updateReady();
  view.tick();
}, 1000);

api.events(onEvent, onStatus);
updateSummary(true);

// The timeline is optional: the page works without it. It is mounted once
// the tree has filled (or after TIMELINE_WAIT_MS at most): its first trace
// of a big tree is megabytes, and fetched and parsed meanwhile it would
// compete with the tree's own loading for the server and the main thread.
const TIMELINE_WAIT_MS = 3000;
let timelineStarted = false;
function mountTimeline() {
  if (timelineStarted) return;
  timelineStarted = true;
  import('./timeline.js')
    .then((m) => {
      timeline = m.mountTimeline($('timeline'), { api, onSelect: (id) => openNode(id) });
    })
    .catch(() => {});
}
setTimeout(mountTimeline, TIMELINE_WAIT_MS);
