// model.js - the client's model of the tree and the loader that fills it from
// the API. No DOM here: node can load it (tests, benches).
//
// The model is a Map id -> node record, kept current by snapshots (GET
// /api/v1/tree, /nodes/{id}/children) and by the event stream. The two race:
// a snapshot can be older than an event already applied, or newer than an
// event still in flight. Every update is therefore monotonic (a state only
// moves forward along the lifecycle, an outcome is set once, stuck and
// cancel_requested only become true, restarts only grow), so applying both in
// any order converges on the newest truth.

export const STATES = ['CREATED', 'STARTING', 'STARTED', 'STOPPING', 'STOPPED', 'FINISHED'];
export const KINDS = ['root', 'supervisor', 'service', 'group', 'task', 'process'];
const RANK = Object.fromEntries(STATES.map((s, i) => [s, i]));

const PAGE = 1000;               // the API's largest page
const WORKERS = 4;               // loader requests in flight at once
export const MAX_NODES = 50000;  // the loader stops filling past this
const MAX_FINISHED = 100000;     // finished nodes the page keeps at most

// Wall-clock ms of an RFC 3339 time (nanoseconds are dropped), or null.
export function wallMs(text) {
  if (!text) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

// When a node entered its current state, as well as a snapshot tells it:
// the state's own time when the API has one, else the latest time before it.
function snapshotSince(n) {
  switch (n.state) {
    case 'FINISHED':
      return wallMs(n.finished) ?? wallMs(n.stop_requested) ?? wallMs(n.created);
    case 'STOPPING':
    case 'STOPPED':
      return wallMs(n.stop_requested) ?? wallMs(n.started) ?? wallMs(n.created);
    case 'STARTING':
    case 'STARTED':
      return wallMs(n.started) ?? wallMs(n.created);
    default:
      return wallMs(n.created);
  }
}

export class TreeModel {
  constructor() {
    this.nodes = new Map();
    this.rootId = null;
    this.counts = Object.fromEntries(STATES.map((s) => [s, 0]));
    this.finishedOrder = [];     // ids in the order they finished, for eviction
    this.structure = 0;          // bumped when nodes come or go (the flat list changes)
    this.changed = 0;            // bumped on any change (rows repaint)
    this.onStale = null;         // (id) => void: an event we cannot apply exactly (restart)
  }

  clear() {
    this.nodes.clear();
    this.rootId = null;
    for (const s of STATES) this.counts[s] = 0;
    this.finishedOrder = [];
    this.structure++;
    this.changed++;
  }

  get size() {
    return this.nodes.size;
  }

  // Adds or updates a node from the API's JSON (tree, children, detail).
  // Returns the record.
  upsert(n) {
    let rec = this.nodes.get(n.id);
    if (!rec) {
      rec = this.add({ id: n.id, parentId: n.parent_id, name: n.name, kind: n.kind,
        state: n.state, since: snapshotSince(n), created: wallMs(n.created) });
    } else {
      if (n.name) rec.name = n.name;
      this.advance(rec, n.state, snapshotSince(n));
      if (rec.created === null) rec.created = wallMs(n.created);
    }
    if (rec.outcome === 'NONE' && n.outcome !== 'NONE') rec.outcome = n.outcome;
    if (n.error && !rec.error) rec.error = n.error;
    rec.cancelRequested ||= n.cancel_requested;
    rec.stuck ||= n.stuck;
    rec.restarts = Math.max(rec.restarts, n.restarts || 0);
    // The earlier sibling that holds a supervised child's start back (only
    // while it waits); every node shape of the API carries it.
    rec.waitingFor = n.waiting_for || null;
    rec.serverChildren = n.children;
    rec.version++;
    this.changed++;
    return rec;
  }

  // A new record, linked under its parent in id (creation) order.
  add(f) {
    const rec = { id: f.id, parentId: f.parentId, name: f.name || `#${f.id}`, kind: f.kind,
      state: f.state, outcome: 'NONE', error: null, cancelRequested: false, stuck: false,
      restarts: 0, waitingFor: null, since: f.since, created: f.created ?? null, children: [],
      serverChildren: 0, loadedOffset: 0, unloaded: 0, loadedSeq: 0, version: 0 };
    this.nodes.set(rec.id, rec);
    this.counts[rec.state]++;
    if (rec.state === 'FINISHED') this.finishedOrder.push(rec.id);
    if (f.parentId === 0 || f.kind === 'root') this.rootId = rec.id;
    const parent = this.nodes.get(f.parentId);
    if (parent) insertSorted(parent.children, rec.id);
    this.structure++;
    return rec;
  }

  // Moves rec to state if that is forward (or the same state again: no-op).
  advance(rec, state, since) {
    if (!state || RANK[state] <= RANK[rec.state]) return false;
    this.counts[rec.state]--;
    this.counts[state]++;
    rec.state = state;
    rec.waitingFor = null;       // it started (or ended): not waiting any more
    if (since !== null && since !== undefined) rec.since = since;
    if (state === 'FINISHED') {
      this.finishedOrder.push(rec.id);
      if (rec.outcome === 'NONE')
        rec.outcome = rec.error ? 'FAILED' : rec.cancelRequested ? 'CANCELLED' : 'OK';
    }
    return true;
  }

  // Applies one SSE event (docs/openapi.yaml, Event). Returns true when the
  // model changed.
  applyEvent(ev) {
    const t = wallMs(ev.time);
    let rec = this.nodes.get(ev.node_id);
    if (!rec) {
      // Met first in an event: known when its parent is (or it is the root),
      // and the server still knows its name. Others belong to a part of the
      // tree we have not loaded, or are gone already.
      if (ev.name === null || ev.name === undefined) return false;
      if (ev.parent_id !== 0 && !this.nodes.has(ev.parent_id)) return false;
      const parent = this.nodes.get(ev.parent_id);
      if (parent && ev.type === 'created') parent.serverChildren++;
      rec = this.add({ id: ev.node_id, parentId: ev.parent_id, name: ev.name, kind: ev.kind,
        state: 'CREATED', since: t, created: ev.type === 'created' ? t : null });
    }
    switch (ev.type) {
      case 'state':
        // Forward only; a "from" equal to what we hold also covers a state
        // machine that ever steps back.
        if (!this.advance(rec, ev.to, t) && ev.from === rec.state && ev.to !== rec.state) {
          this.counts[rec.state]--;
          this.counts[ev.to]++;
          rec.state = ev.to;
          rec.since = t;
        }
        break;
      case 'failed':
        if (!rec.error) rec.error = ev.error;
        break;
      case 'cancel':
        rec.cancelRequested = true;
        break;
      case 'stuck':
        rec.stuck = true;
        break;
      case 'restart':
        // The event does not carry the count; a snapshot of the node does.
        if (this.onStale) this.onStale(rec.id);
        break;
      default:
        break;
    }
    rec.version++;
    this.changed++;
    return true;
  }

  // Drops the n oldest finished nodes (with their subtrees, finished before
  // them by rule 1): the server evicted that many from its retention, oldest
  // first (app.js learns it from /metrics). Past MAX_FINISHED the page drops
  // them by itself, whatever the server keeps.
  evictOldest(n) {
    n = Math.max(n, this.counts.FINISHED - MAX_FINISHED);
    if (n <= 0) return;
    // Snapshots add finished nodes in tree order: put them in finishing order.
    const since = (id) => this.nodes.get(id)?.since ?? 0;
    this.finishedOrder.sort((a, b) => since(a) - since(b));
    while (n > 0 && this.finishedOrder.length > 0) {
      const id = this.finishedOrder.shift();
      const rec = this.nodes.get(id);
      if (!rec || rec.state !== 'FINISHED' || id === this.rootId) continue;
      n -= this.remove(rec);
    }
  }

  // Removes rec and its subtree; returns how many finished nodes went.
  remove(rec) {
    let gone = 0;
    const stack = [rec];
    while (stack.length) {
      const r = stack.pop();
      for (const c of r.children) {
        const cr = this.nodes.get(c);
        if (cr) stack.push(cr);
      }
      this.nodes.delete(r.id);
      this.counts[r.state]--;
      if (r.state === 'FINISHED') gone++;
    }
    // The parent's children list is compacted lazily by the flattening.
    this.structure++;
    this.changed++;
    return gone;
  }

  // Ids from the root down to id (both included), or [] when not linked.
  path(id) {
    const out = [];
    let rec = this.nodes.get(id);
    while (rec) {
      out.push(rec.id);
      if (rec.id === this.rootId) return out.reverse();
      rec = this.nodes.get(rec.parentId);
    }
    return [];
  }
}

function insertSorted(list, id) {
  if (list.length === 0 || list[list.length - 1] < id) {
    list.push(id);               // the common case: ids grow with creation
    return;
  }
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  if (list[lo] !== id) list.splice(lo, 0, id);
}

// Fills the model from the API: the first snapshot, then what it left out.
// A /tree answer holds at most 1000 nodes; a node whose children were cut
// says so ("more", or no "nodes" at the depth limit) and joins the queue. The
// queue is worked one request at a time, so loading a big tree never takes
// more than one of the browser's six connections, and an expanded node's
// request jumps the queue (prioritize).
export class Loader {
  // seqNow: () => the seq of the newest event the page has applied. Each
  // record is stamped with its value when the answer that brought it was
  // asked for (loadedSeq): that answer includes every event up to it.
  constructor(model, api, onProgress, seqNow = () => 0) {
    this.model = model;
    this.api = api;
    this.onProgress = onProgress;
    this.seqNow = seqNow;
    this.queue = [];             // ids with children still to load
    this.busy = 0;               // requests in flight
    this.generation = 0;         // a reload makes older answers stale
    this.rootCreated = null;
  }

  // The whole tree again (first load, after a gap or a server restart).
  // Resolves once the first snapshot is in the model.
  async reload() {
    const gen = ++this.generation;
    this.queue = [];
    const seq = this.seqNow();
    const tree = await this.api.get(`/api/v1/tree?depth=64&limit=${PAGE}`);
    if (gen !== this.generation) return false;
    this.rootCreated = tree.root.created;  // the runtime's identity (app.js)
    this.model.clear();
    this.ingestTree(tree.root, seq);
    this.pump();
    return true;
  }

  ingestTree(tn, seq) {
    const stack = [tn];
    while (stack.length) {
      const n = stack.pop();
      const rec = this.model.upsert(n);
      rec.loadedSeq = Math.max(rec.loadedSeq, seq);
      const got = n.nodes ? n.nodes.length : 0;
      rec.loadedOffset = Math.max(rec.loadedOffset, got);
      rec.unloaded = n.more || 0;
      if (!n.nodes) rec.loadedOffset = 0;  // none included: start from the first child
      if (rec.unloaded > 0) this.enqueue(rec.id);
      if (n.nodes) for (let i = n.nodes.length - 1; i >= 0; i--) stack.push(n.nodes[i]);
    }
  }

  enqueue(id) {
    if (!this.queue.includes(id)) this.queue.push(id);
  }

  // Loads id's missing children next (the operator expanded it).
  prioritize(id) {
    const rec = this.model.nodes.get(id);
    if (!rec || rec.unloaded <= 0) return;
    const i = this.queue.indexOf(id);
    if (i > 0) this.queue.splice(i, 1);
    if (i !== 0) this.queue.unshift(id);
    this.pump();
  }

  get loading() {
    return this.busy > 0 || this.queue.length > 0;
  }

  // Works the queue with WORKERS requests in flight: enough to hide each
  // round trip, few enough to leave the browser's other connections (six per
  // origin; the event stream holds one) to the page.
  pump() {
    while (this.busy < WORKERS && this.queue.length > 0 && this.model.size < MAX_NODES) {
      this.busy++;
      this.work(this.generation).finally(() => {
        this.busy--;
        if (this.onProgress) this.onProgress();
      });
    }
  }

  async work(gen) {
    try {
      while (this.queue.length && gen === this.generation && this.model.size < MAX_NODES) {
        const id = this.queue.shift();
        const rec = this.model.nodes.get(id);
        if (!rec || rec.unloaded <= 0) continue;
        await this.loadChildren(rec, gen);
        this.pump();             // what it queued may keep more workers busy
        if (this.onProgress) this.onProgress();
      }
    } catch {
      // The server went away mid-load; the reconnect's reload starts over.
    }
  }

  // One request for rec's missing children: its whole subtree when we hold
  // none of them (deep and breadth first in one answer), else the next page.
  async loadChildren(rec, gen) {
    const seq = this.seqNow();
    if (rec.loadedOffset === 0) {
      let tree;
      try {
        tree = await this.api.get(`/api/v1/tree?root=${rec.id}&depth=64&limit=${PAGE}`);
      } catch (e) {
        if (e.status === 404) rec.unloaded = 0;  // evicted meanwhile
        else throw e;
        return;
      }
      if (gen === this.generation) this.ingestTree(tree.root, seq);
      return;
    }
    let page;
    try {
      page = await this.api.get(`/api/v1/nodes/${rec.id}/children?offset=${rec.loadedOffset}&limit=${PAGE}`);
    } catch (e) {
      if (e.status === 404) rec.unloaded = 0;
      else throw e;
      return;
    }
    if (gen !== this.generation) return;
    for (const c of page.children) {
      const cr = this.model.upsert(c);
      cr.loadedSeq = Math.max(cr.loadedSeq, seq);
      if (c.children > 0 && cr.children.length === 0) {
        cr.unloaded = c.children;
        cr.loadedOffset = 0;
        this.enqueue(cr.id);
      }
    }
    rec.loadedOffset = page.offset + page.children.length;
    rec.unloaded = Math.max(0, page.total - rec.loadedOffset);
    if (page.children.length === 0) rec.unloaded = 0;  // the list shrank under us
    if (rec.unloaded > 0) this.enqueue(rec.id);
    this.model.structure++;
  }
}

// What to show: by name (substring, any case), state and kind. Outcome and
// stuck ride in the state filter as "outcome:FAILED" and "stuck".
export function makeMatcher({ text = '', state = '', kind = '' }) {
  const q = text.trim().toLowerCase();
  if (!q && !state && !kind) return null;
  return (rec) => {
    if (q && !rec.name.toLowerCase().includes(q)) return false;
    if (kind && rec.kind !== kind) return false;
    if (state === 'stuck') return rec.stuck;
    if (state === 'live') return rec.state !== 'FINISHED';
    if (state.startsWith('outcome:')) return rec.outcome === state.slice(8);
    if (state && rec.state !== state) return false;
    return true;
  };
}

// The rows to show, in order: {id, depth, match} for nodes and
// {more: parentId, depth, count} for a placeholder of children not yet loaded.
// Without a filter, collapsed nodes hide their subtrees. With one, the matches
// show with their ancestors (match false: context, so a hit keeps its place
// in the tree) and collapsing is ignored.
export function flatten(model, collapsed, matcher) {
  const out = [];
  const root = model.nodes.get(model.rootId);
  if (!root) return out;
  let keep = null;
  if (matcher) {
    keep = new Map();            // id -> true (match) | false (ancestor of one)
    for (const rec of model.nodes.values()) {
      if (!matcher(rec)) continue;
      keep.set(rec.id, true);
      let p = model.nodes.get(rec.parentId);
      while (p && !keep.has(p.id)) {
        keep.set(p.id, false);
        p = model.nodes.get(p.parentId);
      }
    }
    if (!keep.has(root.id)) return out;
  }
  // Depth-first with an explicit stack: a 10,000-deep chain must not overflow.
  // A placeholder is pushed before the children, so it pops after them.
  const stack = [[root, 0]];
  while (stack.length) {
    const [rec, depth] = stack.pop();
    if (rec.more !== undefined) {
      out.push({ more: rec.more, count: rec.count, depth });
      continue;
    }
    out.push({ id: rec.id, depth, match: keep ? keep.get(rec.id) : true });
    if (!keep && collapsed.has(rec.id)) continue;
    if (!keep && rec.unloaded > 0) stack.push([{ more: rec.id, count: rec.unloaded }, depth + 1]);
    const kids = liveChildren(model, rec);
    for (let i = kids.length - 1; i >= 0; i--) {
      const c = model.nodes.get(kids[i]);
      if (!keep || keep.has(c.id)) stack.push([c, depth + 1]);
    }
  }
  return out;
}

// rec's children that are still in the model; drops evicted ones from the
// list as it goes (eviction leaves that to us, see TreeModel.remove).
function liveChildren(model, rec) {
  const kids = rec.children;
  let j = 0;
  for (let i = 0; i < kids.length; i++) if (model.nodes.has(kids[i])) kids[j++] = kids[i];
  kids.length = j;
  return kids;
}

// "3s", "4m 12s", "2h 05m", "3d 4h": how long, at a glance.
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

// Text beside the colour, so nothing is told by colour alone.
export const STATE_ICON = { CREATED: '○', STARTING: '◔', STARTED: '●', STOPPING: '◑',
  STOPPED: '◕', FINISHED: '■' };
export const OUTCOME_ICON = { NONE: '', OK: '✓', FAILED: '✗', CANCELLED: '⊘' };
export const KIND_LABEL = { root: 'root', supervisor: 'sup', service: 'svc', group: 'grp',
  task: 'task', process: 'proc' };

