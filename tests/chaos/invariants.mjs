// tests/chaos/invariants.mjs - what must hold of arbor's tree and event stream
// whatever was done to it (DESIGN.md, "The tree" and "The rules"), written once
// and used after every chaos round and by the soak.
//
// The tree is read through the admin API as any client sees it; the events are
// those an SSE client followed. Each check returns a list of violations (strings
// naming the node and what is wrong): empty when everything holds.

export const STATES = ['CREATED', 'STARTING', 'STARTED', 'STOPPING', 'STOPPED', 'FINISHED'];
const OUTCOMES = ['OK', 'FAILED', 'CANCELLED'];

// supervisor/lifecycle.c's table: the only moves a node may make.
const LEGAL = {
  CREATED: ['STARTING', 'STARTED', 'FINISHED'],
  STARTING: ['STARTED', 'STOPPING'],
  STARTED: ['STOPPING', 'STOPPED'],
  STOPPING: ['STOPPED'],
  STOPPED: ['FINISHED'],
  FINISHED: [],
};

export function isLegalTransition(from, to) {
  return (LEGAL[from] || []).includes(to);
}

function label(n) {
  return `${n.kind} ${n.name} (id ${n.id})`;
}

// The tree as nested nodes (GET /api/v1/tree's root, each node's `nodes` complete:
// the caller fetched the pages `more` left out). Checks:
//  - every state is one of the six, and the outcome is set exactly when FINISHED;
//  - a child's parent_id is its parent's id;
//  - rule 1: a FINISHED node has no child that is not FINISHED;
//  - live_children counts the children that are not FINISHED (a live child is never
//    evicted from retention, so the listing holds all of them), where the one
//    response listed them all (not `paged`: read from later pages).
export function checkTree(root) {
  const bad = [];
  const walk = (n, parent) => {
    if (!STATES.includes(n.state)) bad.push(`${label(n)}: illegal state ${n.state}`);
    if (n.state === 'FINISHED' && !OUTCOMES.includes(n.outcome))
      bad.push(`${label(n)}: FINISHED with outcome ${n.outcome}`);
    if (n.state !== 'FINISHED' && n.outcome !== 'NONE')
      bad.push(`${label(n)}: ${n.state} with outcome ${n.outcome}`);
    if (parent && n.parent_id !== parent.id)
      bad.push(`${label(n)}: listed under id ${parent.id} but its parent_id is ${n.parent_id}`);
    const kids = n.nodes || [];
    const live = kids.filter((c) => c.state !== 'FINISHED');
    if (n.state === 'FINISHED' && live.length > 0)
      bad.push(`${label(n)}: FINISHED with unfinished child ${label(live[0])} in ${live[0].state}`);
    if (!n.paged && typeof n.live_children === 'number' && n.live_children !== live.length)
      bad.push(`${label(n)}: live_children ${n.live_children} but ${live.length} unfinished children listed`);
    for (const c of kids) walk(c, n);
  };
  walk(root, null);
  return bad;
}

// Every service and supervisor of the tree, flat.
export function services(root) {
  const out = [];
  const walk = (n) => {
    if (n.kind === 'service' || n.kind === 'supervisor') out.push(n);
    for (const c of n.nodes || []) walk(c);
  };
  walk(root);
  return out;
}

// Rule 9 seen from outside: each service's and supervisor's `restarts` equals the
// RESTART events the stream carried for it. The tree was read between two points
// of the stream, seqA and seqB (events recorded before and after the read), while
// the demo kept restarting on its own: the count must lie between the restarts
// recorded up to seqA and up to seqB. restartSeqs: node id -> sorted seqs.
export function checkRestarts(root, restartSeqs, seqA, seqB) {
  const bad = [];
  for (const n of services(root)) {
    const seqs = restartSeqs.get(n.id) || [];
    const lo = seqs.filter((s) => s <= seqA).length;
    const hi = seqs.filter((s) => s <= seqB).length;
    if (n.restarts < lo || n.restarts > hi)
      bad.push(`${label(n)}: restarts ${n.restarts} but the stream has ${lo === hi ? lo : `${lo}..${hi}`} RESTART events for it`);
  }
  return bad;
}
