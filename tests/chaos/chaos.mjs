// tests/chaos/chaos.mjs - the chaos test: one arbor daemon with every kind of node,
// thousands of random actions, and the invariants checked after each round.
//
//   node tests/chaos/chaos.mjs [--build DIR] [--seed N] [--actions N] [--rounds N]
//                              [--rate PER_S] [--seconds S] [--csv FILE] [--scrape-ms MS]
//                              [--no-warmup]
//
// The daemon is `arbor run --demo CONFIG`: the demo's fibers and callback tasks
// (heartbeat, db-sync, the peer manager with a task per peer, retry, breaker, a
// crashing program) beside a config's real programs (tests/chaos/prog.sh: some
// fork two grandchildren, some crash by themselves), under a supervisor with a
// one_for_all one inside. Three SSE clients follow /api/v1/events the whole time
// (one from the first event, one that reconnects with Last-Event-ID now and
// then), and a seeded PRNG picks each action: cancel or restart a random node
// through the API, kill -9 a program or a grandchild, SIGHUP with a rewritten
// config (services added, removed, changed), live add / update / remove through
// the API, SIGUSR1 (a trace written in the background), a GET of the tree,
// /metrics, /trace, a node or a log, a bad request. Any answer but
// the documented statuses, or none within 10 s, fails at once.
//
// After each round the base config is restored (SIGHUP) and: arbor answers
// /healthz; the whole tree keeps every invariant (invariants.mjs); each
// service's restarts match the RESTART events the stream carried; no child of
// arbor stays a zombie; arbor's file descriptors are back to the baseline; its
// RSS is recorded. Before the first round, a warm-up fills what is bounded
// (the event ring, retention); at the end: RSS flat (the last round against the
// first; not with --no-warmup, which the sanitized run uses: ASan's quarantine
// holds freed memory on purpose),
// SIGTERM, exit status 0 (docs/config.md: nothing failed), no zombie, and no
// process any program started still alive.
//
// With --seconds it runs for that long instead of a number of actions (the
// soak: a round a minute), and --csv records a Prometheus scrape of /metrics
// every --scrape-ms (RSS, fds, events, drops, restarts) as CSV.
//
// A failure prints the seed (CHAOS_SEED=N reproduces the same actions; the
// timing of the daemon's own restarts differs) and the action log's tail.
// Exit: 0 pass, 1 fail, 2 usage.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { checkRestarts, checkTree, isLegalTransition } from './invariants.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

// ------------------------------------------------------------------- options

function parseArgs(argv) {
  const o = {
    build: process.env.ARBOR_BUILD || 'build/gcc-opt',
    seed: process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : (Date.now() % 1000000007),
    actions: Number(process.env.CHAOS_ACTIONS || 2000),
    rounds: Number(process.env.CHAOS_ROUNDS || 3),
    rate: 0, seconds: 0, csv: null, scrapeMs: 5000, warmup: true,
  };
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--no-warmup') {
      o.warmup = false;
      continue;
    }
    const [k, v] = argv[i].includes('=') ? argv[i].split(/=(.*)/s) : [argv[i], argv[++i]];
    const num = () => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) usage(`${k}: expected a number, not "${v}"`);
      return n;
    };
    switch (k) {
      case '--build': o.build = v; break;
      case '--seed': o.seed = num(); break;
      case '--actions': o.actions = num(); break;
      case '--rounds': o.rounds = Math.max(1, num()); break;
      case '--rate': o.rate = num(); break;
      case '--seconds': o.seconds = num(); break;
      case '--csv': o.csv = v; break;
      case '--scrape-ms': o.scrapeMs = Math.max(100, num()); break;
      default: usage(`unknown option ${k}`);
    }
  }
  o.build = path.resolve(root, o.build);
  return o;
}

function usage(msg) {
  console.error(`chaos: ${msg}\nusage: node tests/chaos/chaos.mjs [--build DIR] [--seed N] [--actions N] [--rounds N] [--rate PER_S] [--seconds S] [--csv FILE] [--scrape-ms MS] [--no-warmup]`);
  process.exit(2);
}

const opts = parseArgs(process.argv);

// mulberry32: small, seedable, the same sequence on every machine.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(opts.seed);
const pick = (arr) => arr[Math.floor(rand() * arr.length)];

// --------------------------------------------------------------- action log

const logTail = [];
const t0 = performance.now();
function note(line) {
  const s = `[${((performance.now() - t0) / 1000).toFixed(2).padStart(7)}s] ${line}`;
  logTail.push(s);
  if (logTail.length > 40) logTail.shift();
}
function say(line) {
  note(line);
  console.log(line);
}

class Failure extends Error {}
function fail(msg) {
  throw new Failure(msg);
}

// -------------------------------------------------------------------- http

let base = null;

// One request on a connection of its own (no keep-alive), so that arbor's fds
// say only what arbor holds, not what a client pool left open. 10 s bound: a
// request that long is a hang.
function request(method, p, body) {
  return new Promise((resolve, reject) => {
    const headers = { Connection: 'close' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const req = http.request(`${base}${p}`, { method, agent: false, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${p}: no answer within 10 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

async function expectStatus(what, method, p, body, allowed) {
  let r;
  try {
    r = await request(method, p, body);
  } catch (e) {
    fail(`${what}: ${method} ${p}: ${e.message}`);
  }
  note(`  -> ${r.status}`);
  if (!allowed.includes(r.status))
    fail(`${what}: ${method} ${p} answered ${r.status} (expected ${allowed.join('/')}): ${r.body.slice(0, 300)}`);
  return r;
}

async function getJSON(p) {
  const r = await expectStatus('read', 'GET', p, undefined, [200]);
  return JSON.parse(r.body);
}

// The whole tree: /api/v1/tree, then the pages of every node whose children it
// left out (`more`) or whose level it did not reach (depth, the node budget).
// Those pages are read later than the tree: a node listed in both keeps the
// tree's version, and a node whose children came (even partly) from a page is
// marked `paged`, since counts across two reads need not agree (checkTree then
// leaves its live_children alone; everything else stays sound, as FINISHED is
// for good). A node gone meanwhile (evicted from retention: 404) keeps what
// the tree listed.
async function fullTree() {
  const t = await getJSON('/api/v1/tree?depth=64&limit=1000');
  const fill = async (n) => {
    const listed = n.nodes ? n.nodes.length : 0;
    if (n.children > listed) {
      const all = [];
      let gone = false;
      for (let off = 0; ; off += 1000) {
        const r = await expectStatus('read', 'GET', `/api/v1/nodes/${n.id}/children?offset=${off}&limit=1000`, undefined, [200, 404]);
        if (r.status === 404) { gone = true; break; }
        const page = JSON.parse(r.body);
        const items = page.nodes || page.children || [];
        all.push(...items);
        if (items.length < 1000) break;
      }
      if (!gone) {
        const known = new Map((n.nodes || []).map((c) => [c.id, c]));
        n.nodes = all.map((c) => known.get(c.id) || c);
      }
      n.paged = true;
    }
    for (const c of n.nodes || []) await fill(c);
  };
  await fill(t.root);
  return t.root;
}

function flatten(n, out = []) {
  out.push(n);
  for (const c of n.nodes || []) flatten(c, out);
  return out;
}

// Prometheus text: "name{labels} value" lines; the unlabelled samples by name.
function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const key = line.slice(0, sp);
    const v = Number(line.slice(sp + 1));
    if (!key.includes('{')) m.set(key, v);
  }
  return m;
}

async function metrics() {
  const r = await expectStatus('scrape', 'GET', '/metrics', undefined, [200]);
  return parseMetrics(r.body);
}

// ----------------------------------------------------------------- the SSE

// A client of /api/v1/events. It checks what any client may rely on: ids go up
// by one (or jump exactly where an `event: gap` said), each state event is a
// legal move from the node's previous state; and it counts RESTART events by
// node (only the first client's counts are used, and only when it saw no gap).
class Follower {
  constructor(name, { fromStart }) {
    this.name = name;
    this.fromStart = fromStart;
    this.lastId = 0;
    this.events = 0;
    this.gaps = 0;
    this.reconnects = 0;
    this.expectNext = 0;
    this.violations = [];
    this.restartSeqs = new Map();
    this.lastState = new Map();
    this.req = null;
    this.ended = false;
  }

  connect() {
    const headers = { Accept: 'text/event-stream' };
    let p = '/api/v1/events';
    if (this.lastId > 0) headers['Last-Event-ID'] = String(this.lastId);
    else if (this.fromStart) p += '?after=0';
    this.ended = false;
    let buf = '';
    this.req = http.get(`${base}${p}`, { agent: false, headers }, (res) => {
      if (res.statusCode !== 200) this.violations.push(`${this.name}: ${p} answered ${res.statusCode}`);
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          this.block(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      });
      res.on('end', () => { this.ended = true; });
      res.on('error', () => { this.ended = true; });
    });
    this.req.on('error', () => { this.ended = true; });
  }

  reconnect() {
    this.req.destroy();
    this.reconnects++;
    this.connect();
  }

  stop() {
    if (this.req) this.req.destroy();
  }

  block(text) {
    let id = null, type = null, data = null;
    for (const line of text.split('\n')) {
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const k = c < 0 ? line : line.slice(0, c);
      const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (k === 'id') id = Number(v);
      else if (k === 'event') type = v;
      else if (k === 'data') data = v;
    }
    if (type === 'gap') {
      const g = JSON.parse(data);
      this.gaps++;
      this.expectNext = g.next_seq;
      note(`${this.name}: gap, ${g.missed} missed, next ${g.next_seq}`);
      return;
    }
    if (id === null || data === null) return;
    if (this.expectNext !== 0 && id !== this.expectNext)
      this.violations.push(`${this.name}: event id ${id} after ${this.lastId} (expected ${this.expectNext})`);
    if (id <= this.lastId)
      this.violations.push(`${this.name}: event id ${id} not above ${this.lastId}`);
    this.lastId = id;
    this.expectNext = id + 1;
    this.events++;
    const e = JSON.parse(data);
    if (e.seq !== id) this.violations.push(`${this.name}: id ${id} but seq ${e.seq}`);
    if (e.type === 'restart') {
      if (!this.restartSeqs.has(e.node_id)) this.restartSeqs.set(e.node_id, []);
      this.restartSeqs.get(e.node_id).push(e.seq);
    }
    if (e.type === 'state') {
      if (!isLegalTransition(e.from, e.to))
        this.violations.push(`${this.name}: event ${id}: ${e.kind} ${e.name} (id ${e.node_id}) moved ${e.from} -> ${e.to}`);
      const prev = this.lastState.get(e.node_id);
      if (prev !== undefined && prev !== e.from && this.gaps === 0)
        this.violations.push(`${this.name}: event ${id}: node ${e.node_id} moved from ${e.from} but was ${prev}`);
      if (e.to === 'FINISHED') this.lastState.delete(e.node_id);
      else this.lastState.set(e.node_id, e.to);
    }
  }
}

// ------------------------------------------------------------ the programs

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'arbor-chaos-'));
// The programs' directory: they all end once it is gone (prog.sh).
const progDir = path.join(work, 'progs');
fs.mkdirSync(progDir);
const prog = path.join(here, 'prog.sh');
const configPath = path.join(work, 'chaos.json');
// A bound on every program's life, past which it ends by itself: the run's
// length and then some.
const progLimit = Math.ceil((opts.seconds || 600) + 300);

function svc(name, mode, extra) {
  const argv = [prog, progDir, mode, String(progLimit), name];
  if (extra) argv.push(extra);
  return { service: name, argv, shutdown_timeout_ms: 2000 };
}

// The base tree: what every round starts from and is restored to.
function baseTree() {
  return [
    svc('p0', 'plain'), svc('p1', 'plain'), svc('f0', 'forker'), svc('f1', 'forker'),
    { supervisor: 'inner', strategy: 'one_for_all', intensity: 100000, period_ms: 1000,
      backoff_ms: 10, backoff_max_ms: 200,
      children: [svc('f2', 'forker'), svc('p2', 'plain')] },
  ];
}

function writeConfig(children) {
  const cfg = {
    admin: { bind: '127.0.0.1', port: 0 },
    event_capacity: 8192,
    shutdown_timeout_ms: 10000,
    tree: [{ supervisor: 'chaos', strategy: 'one_for_one', intensity: 100000, period_ms: 1000,
             backoff_ms: 10, backoff_max_ms: 200, children }],
  };
  fs.writeFileSync(configPath + '.tmp', JSON.stringify(cfg, null, 1));
  fs.renameSync(configPath + '.tmp', configPath);
}

// Every process a program started, from DIR/pids: "PID MODE NAME" lines.
function recordedPids() {
  let text = '';
  try { text = fs.readFileSync(path.join(progDir, 'pids'), 'utf8'); } catch { /* none yet */ }
  return text.split('\n').filter(Boolean).map((l) => {
    const [pid, mode, name] = l.split(' ');
    return { pid: Number(pid), mode, name };
  });
}

// Alive and still ours: /proc/PID exists and runs prog.sh on our directory (a
// pid the kernel gave to someone else since is not ours).
function isOurs(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(progDir);
  } catch {
    return false;
  }
}

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]) };
  } catch {
    return null;
  }
}

// Zombie children of ppid that stay zombies: one seen at two looks 1 s apart
// (arbor reaps on its next loop turn, so a fresh one is no finding).
async function lingeringZombies(ppid) {
  const scan = () => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    const st = procStat(d);
    return st && st.ppid === ppid && st.state === 'Z';
  });
  const first = scan();
  if (first.length === 0) return [];
  await sleep(1000);
  const second = new Set(scan());
  return first.filter((p) => second.has(p));
}

function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, ms, cond) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) fail(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(50);
  }
}

// ------------------------------------------------------------ the daemon

let arbor = null;
let arborExit = null;
let arborErr = '';

async function startArbor() {
  writeConfig(baseTree());
  const bin = path.join(opts.build, 'arbor');
  arbor = spawn(bin, ['run', '--demo', '--port', '0', configPath], {
    cwd: work, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: work },
  });
  arborExit = new Promise((resolve) => arbor.on('exit', (code, sig) => resolve({ code, sig })));
  arbor.stderr.on('data', (c) => {
    arborErr += c;
    if (arborErr.length > 200000) arborErr = arborErr.slice(-100000);
  });
  let out = '';
  base = await new Promise((resolve, reject) => {
    arbor.stdout.on('data', (c) => {
      out += c;
      const m = /dashboard at (http:\/\/[^/\s]+)\//.exec(out);
      if (m) resolve(m[1]);
    });
    arbor.on('exit', () => reject(new Failure(`arbor exited before serving: ${arborErr.slice(-2000)}`)));
  });
  say(`chaos: arbor ${arbor.pid} at ${base}, work dir ${work}`);
}

// The config's services, by name, from a tree.
function configServices(tree) {
  const out = new Map();
  const walk = (n, inConfig) => {
    const here2 = inConfig || (n.kind === 'supervisor' && n.name === 'config');
    if (here2 && n.kind === 'service' && n.state !== 'FINISHED') out.set(n.name, n);
    for (const c of n.nodes || []) walk(c, here2);
  };
  walk(tree, false);
  return out;
}

// The base config again, and every one of its services running: the state the
// fd baseline is taken in.
async function restoreBase() {
  writeConfig(baseTree());
  process.kill(arbor.pid, 'SIGHUP');
  const want = ['p0', 'p1', 'f0', 'f1', 'f2', 'p2'];
  await waitFor('the base config running again', 30000, async () => {
    const svcs = configServices(await fullTree());
    if (svcs.size !== want.length) return false;
    return want.every((n) => svcs.has(n) && svcs.get(n).state === 'STARTED');
  });
}

// arbor's descriptors without the demo's own peer connections (the peer
// manager and its client are both in arbor and connect, drop and reconnect on
// their own schedule): every other one counts, admin connections included.
function arborFds() {
  const pid = arbor.pid;
  const inodes = new Map();
  for (const f of ['tcp', 'tcp6']) {
    let text = '';
    try { text = fs.readFileSync(`/proc/${pid}/net/${f}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10) continue;
      inodes.set(c[9], { local: parseInt(c[1].split(':')[1], 16), remote: parseInt(c[2].split(':')[1], 16), state: c[3] });
    }
  }
  const adminPort = Number(new URL(base).port);
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target;
    try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    const s = m && inodes.get(m[1]);
    // A connected TCP socket (state 01 ESTABLISHED, or closing) not on the admin port.
    if (s && s.state !== '0A' && s.local !== adminPort) continue;
    n++;
  }
  return n;
}

// ------------------------------------------------------------- the actions

const followers = [];
const counts = {};
let liveNames = new Set();
let hupCount = 0;

function nodeTargets(tree) {
  return flatten(tree).filter((n) => n.kind !== 'root');
}

// Where a node sits: the config's services (safe to cancel: the next restore
// brings them back), the demo, or the two top supervisors, which are never
// cancelled (that would end arbor, which is not what is under test).
function topOf(tree, id) {
  const byId = new Map(flatten(tree).map((n) => [n.id, n]));
  let n = byId.get(id);
  const chain = [];
  while (n && n.kind !== 'root') {
    chain.unshift(n);
    n = byId.get(n.parent_id);
  }
  return chain;
}

let lastTree = null;
async function tree() {
  if (lastTree === null || rand() < 0.2) lastTree = await fullTree();
  return lastTree;
}

const actions = {
  // Cancel any node but the root and the two top supervisors, and not a node
  // of a live-added service (those sit under "config" itself, whose intensity
  // of 3 a failure storm there would exceed: arbor would exit, by design).
  async cancel() {
    const t = await tree();
    const cands = nodeTargets(t).filter((n) => {
      const chain = topOf(t, n.id);
      if (chain.length < 2) return false;
      if (chain[0].name === 'config' && chain[1].kind === 'service') return false;
      // The demo's services stay (a cancelled service is not restarted, and the
      // demo has no config to restore it): their runs and tasks are fair game.
      if (chain[0].name === 'demo' && n.kind === 'service') return false;
      if (chain[0].name === 'demo' && n.kind === 'supervisor') return false;
      return true;
    });
    if (cands.length === 0) return;
    const n = pick(cands);
    note(`cancel ${n.kind} ${n.name} (id ${n.id})`);
    await expectStatus('cancel', 'POST', `/api/v1/nodes/${n.id}/cancel`, undefined, [202, 404, 409]);
  },

  // Restart any node, the root and the top ones included: a node that is not a
  // supervised service must be refused (400), not obeyed or crashed on.
  async restart() {
    const t = await tree();
    const n = pick(nodeTargets(t));
    note(`restart ${n.kind} ${n.name} (id ${n.id})`);
    await expectStatus('restart', 'POST', `/api/v1/nodes/${n.id}/restart`, undefined, [202, 400, 404, 409]);
  },

  // kill -9 a program or a grandchild, never one of a live-added service.
  async kill9() {
    const cands = recordedPids().filter((p) => !p.name.startsWith('live') && isOurs(p.pid));
    if (cands.length === 0) return;
    const p = pick(cands);
    note(`kill -9 ${p.pid} (${p.mode} of ${p.name})`);
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* it ended meanwhile */ }
  },

  // kill -9 the demo's crashing program (a process service arbor did not get
  // from a config).
  async killDemo() {
    const t = await tree();
    const c = flatten(t).find((n) => n.kind === 'service' && n.name === 'crasher');
    if (!c) return;
    const d = await getJSON(`/api/v1/nodes/${c.id}`);
    if (!d.service || !d.service.pid) return;
    // Not once arbor is gone (the storm at the end): its pid may be anyone's.
    if (arbor.exitCode !== null || arbor.signalCode !== null) return;
    note(`kill -9 ${d.service.pid} (demo crasher)`);
    try { process.kill(d.service.pid, 'SIGKILL'); } catch { /* gone */ }
  },

  // SIGHUP with the base tree changed: services added (some crash by
  // themselves), removed, or given another argv.
  async hup() {
    const children = baseTree();
    const inner = children[4].children;
    for (let i = 0; i < 4; i++) if (rand() < 0.25) children[i] = svc(children[i].service, children[i].argv[2], `v${hupCount}`);
    if (rand() < 0.3) inner[0] = svc('f2', 'forker', `v${hupCount}`);
    if (rand() < 0.3) children.splice(Math.floor(rand() * 4), 1);
    const extra = Math.floor(rand() * 4);
    for (let i = 0; i < extra; i++) {
      const name = `x${Math.floor(rand() * 6)}`;
      if (children.some((c) => c.service === name)) continue;
      children.push(svc(name, pick(['plain', 'forker', 'crasher']), rand() < 0.5 ? `v${hupCount}` : undefined));
    }
    if (rand() < 0.2) inner.push(svc('c9', 'crasher'));
    hupCount++;
    writeConfig(children);
    note(`SIGHUP: ${children.map((c) => c.service || c.supervisor).join(' ')}`);
    process.kill(arbor.pid, 'SIGHUP');
  },

  async liveAdd() {
    const name = `live${Math.floor(rand() * 5)}`;
    note(`live add ${name}`);
    const r = await expectStatus('live add', 'POST', '/api/v1/services', svc(name, pick(['plain', 'forker'])), [201, 409]);
    if (r.status === 201) liveNames.add(name);
  },

  async liveUpdate() {
    const name = `live${Math.floor(rand() * 5)}`;
    note(`live update ${name}`);
    await expectStatus('live update', 'PUT', `/api/v1/services/${name}`, svc(name, 'plain', `u${Math.floor(rand() * 1000)}`), [200, 202, 404, 409]);
  },

  async liveRemove() {
    const name = `live${Math.floor(rand() * 5)}`;
    note(`live remove ${name}`);
    await expectStatus('live remove', 'DELETE', `/api/v1/services/${name}`, undefined, [202, 404, 409]);
  },

  async badInput() {
    const which = Math.floor(rand() * 4);
    note(`bad input ${which}`);
    if (which === 0) await expectStatus('bad add', 'POST', '/api/v1/services', '{"service": 1', [400]);
    else if (which === 1) await expectStatus('bad add', 'POST', '/api/v1/services', { service: 'bad name!', argv: ['x'] }, [400]);
    else if (which === 2) await expectStatus('bad id', 'POST', '/api/v1/nodes/99999999999/cancel', undefined, [404]);
    else await expectStatus('bad query', 'GET', '/api/v1/tree?depth=banana', undefined, [400]);
  },

  async read() {
    const which = Math.floor(rand() * 6);
    if (which === 0) { note('GET tree'); lastTree = await fullTree(); return; }
    if (which === 1) { note('GET /metrics'); await metrics(); return; }
    if (which === 2) { note('GET /trace'); await expectStatus('trace', 'GET', `/api/v1/trace?format=${pick(['chrome', 'otlp'])}`, undefined, [200]); return; }
    const t = await tree();
    const n = pick(nodeTargets(t));
    if (which === 3) { note(`GET log ${n.id}`); await expectStatus('log', 'GET', `/api/v1/nodes/${n.id}/log`, undefined, [200, 400, 404]); return; }
    if (which === 4) { note('GET /healthz'); await expectStatus('healthz', 'GET', '/healthz', undefined, [200]); return; }
    note(`GET node ${n.id}`);
    await expectStatus('node', 'GET', `/api/v1/nodes/${n.id}`, undefined, [200, 404]);
  },

  // SIGUSR1: the trace written in the background (into TMPDIR, our work dir)
  // while everything else goes on.
  async traceDump() {
    note('SIGUSR1');
    process.kill(arbor.pid, 'SIGUSR1');
  },

  async sseReconnect() {
    note(`${followers[2].name}: reconnect after id ${followers[2].lastId}`);
    followers[2].reconnect();
  },
};

// Weights: mostly the API's mutating calls and kills; reads in between.
const weighted = [
  ['cancel', 14], ['restart', 14], ['kill9', 14], ['killDemo', 3], ['hup', 5],
  ['liveAdd', 5], ['liveUpdate', 4], ['liveRemove', 4], ['badInput', 4], ['read', 14],
  ['sseReconnect', 2], ['traceDump', 1],
];
const totalWeight = weighted.reduce((s, [, w]) => s + w, 0);
function chooseAction() {
  let r = rand() * totalWeight;
  for (const [name, w] of weighted) if ((r -= w) < 0) return name;
  return weighted[0][0];
}

// ---------------------------------------------------------------- rounds

let warmup = 0;                  // actions of the warm-up; -1 once over
let warmup0 = 0;
async function act() {
  const name = chooseAction();
  counts[name] = (counts[name] || 0) + 1;
  await actions[name]();
  if (warmup >= 0) warmup++;
  else actionsDone++;
}

const rounds = [];
let scrapeTimer = null;
let csv = null;
let actionsDone = 0;

async function scrape() {
  const m = await metrics();
  const line = [
    ((performance.now() - t0) / 1000).toFixed(1),
    m.get('process_resident_memory_bytes'), m.get('process_open_fds'),
    m.get('arbor_events_recorded_total'), m.get('arbor_events_dropped_total'),
    m.get('arbor_restarts_total'), m.get('arbor_failures_total'),
    followers.reduce((s, f) => s + f.gaps, 0), actionsDone,
  ].join(',');
  fs.appendFileSync(csv, line + '\n');
}

// One point of the stream: what the ring recorded so far.
async function recordedSeq() {
  return (await metrics()).get('arbor_events_recorded_total');
}

async function checkRound(k, baseline) {
  const r = await request('GET', '/healthz');
  if (r.status !== 200) fail(`round ${k}: /healthz answered ${r.status}`);
  await restoreBase();
  // The invariants on the whole tree, read between two points of the stream.
  const seqA = await recordedSeq();
  const t = await fullTree();
  const seqB = await recordedSeq();
  const bad = checkTree(t);
  const f0 = followers[0];
  await waitFor(`${f0.name} to reach event ${seqB}`, 20000, () => f0.lastId >= seqB);
  if (f0.gaps === 0) bad.push(...checkRestarts(t, f0.restartSeqs, seqA, seqB));
  for (const f of followers) bad.push(...f.violations.splice(0));
  if (bad.length) fail(`round ${k}: ${bad.length} invariant(s) broken:\n  ${bad.slice(0, 20).join('\n  ')}`);
  const z = await lingeringZombies(arbor.pid);
  if (z.length) fail(`round ${k}: zombie children of arbor: ${z.join(' ')}`);
  // fds: the demo still churns its own (its crasher's pipes); so wait, up to
  // 20 s, for a moment at or below the baseline's highest.
  let fds = 0;
  await waitFor(`arbor's fds back to ${baseline.fdsMax}`, 20000, () => (fds = arborFds()) <= baseline.fdsMax)
    .catch((e) => fail(`round ${k}: ${e.message} (now ${fds}: a leak)`));
  const rss = rssBytes(arbor.pid);
  const nodes = flatten(t).length;
  rounds.push({ k, rss, fds, nodes });
  say(`chaos: round ${k}: ${actionsDone} actions so far, ${nodes} nodes, invariants hold, fds ${fds} (baseline ${baseline.fdsMin}-${baseline.fdsMax}), RSS ${(rss / 1048576).toFixed(1)} MiB, events ${seqB}, gaps ${followers.map((f) => f.gaps).join('/')}`);
}

async function main() {
  say(`chaos: seed ${opts.seed} (CHAOS_SEED=${opts.seed} reproduces it), ${opts.seconds ? `${opts.seconds} s` : `${opts.actions} actions`} in ${opts.seconds ? 'rounds of 60 s' : `${opts.rounds} rounds`}${opts.rate ? `, ${opts.rate} actions/s` : ''}`);
  await startArbor();
  followers.push(new Follower('sse0', { fromStart: true }), new Follower('sse1', { fromStart: false }),
                 new Follower('sse2', { fromStart: true }));
  for (const f of followers) f.connect();
  await restoreBase();
  // The baseline: the base config running, the three SSE clients connected;
  // 2 s of samples, as the demo's own churn moves it by a few.
  let fdsMin = Infinity, fdsMax = 0;
  for (let i = 0; i < 40; i++) {
    const n = arborFds();
    fdsMin = Math.min(fdsMin, n);
    fdsMax = Math.max(fdsMax, n);
    await sleep(50);
  }
  const baseline = { fdsMin, fdsMax, rss: rssBytes(arbor.pid) };
  say(`chaos: baseline fds ${fdsMin}-${fdsMax}, RSS ${(baseline.rss / 1048576).toFixed(1)} MiB`);
  if (opts.csv) {
    csv = opts.csv;
    fs.writeFileSync(csv, 't_s,rss_bytes,open_fds,events_total,events_dropped,restarts_total,failures_total,sse_gaps,actions\n');
    await scrape();
    scrapeTimer = setInterval(() => scrape().catch((e) => note(`scrape: ${e.message}`)), opts.scrapeMs);
  }

  // Warm-up: actions until everything bounded is full, the event ring wrapped and
  // retention evicting, so the rounds' RSS compares like with like (the ring is
  // calloc'd: its pages count only once written). Bounded in actions too.
  if (opts.warmup) await waitFor('the warm-up', 600000, async () => {
    for (let i = 0; i < 100; i++) await act();
    const m = await metrics();
    return (m.get('arbor_nodes_evicted_total') > 0 &&
            m.get('arbor_events_recorded_total') > m.get('arbor_event_ring_capacity')) ||
           warmup >= 20000;
  });
  if (opts.warmup) say(`chaos: warm-up: ${warmup} actions (the event ring wrapped, retention full)`);
  warmup0 = warmup;
  warmup = -1;

  const perRound = Math.ceil(opts.actions / opts.rounds);
  const deadline = opts.seconds ? Date.now() + opts.seconds * 1000 : 0;
  for (let k = 1; ; k++) {
    const roundEnd = opts.seconds ? Math.min(deadline, Date.now() + 60000) : 0;
    const start = performance.now();
    for (let i = 0; opts.seconds ? Date.now() < roundEnd : i < perRound && actionsDone < opts.actions; i++) {
      await act();
      if (opts.rate) {
        const due = start + ((i + 1) * 1000) / opts.rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
    }
    await checkRound(k, baseline);
    if (opts.seconds ? Date.now() >= deadline : actionsDone >= opts.actions) break;
  }
  if (scrapeTimer) {
    clearInterval(scrapeTimer);
    await scrape();
  }

  // Memory flat: the last round's RSS against the first's. Everything that
  // grows with use is bounded (event ring, retention of finished nodes, log
  // rings, per-connection buffers) and the warm-up filled it; what still moves
  // is glibc's heap, whose top rises to the peak in use plus fragmentation and
  // falls when trimmed. Measured over 10 rounds of 1,000 actions (seed 6): RSS
  // 31.5, 31.9, 32.7, 32.9, 34.6, 35.3, 35.4, 35.4, 35.4, 30.9 MiB while the
  // heap in use (mallinfo2, through gdb) went up and down between 18 and 23 MB:
  // a plateau 12 % over round 1, then a trim. So 15 % of round 1 is the room; a
  // leak grows on past it, round after round.
  if (opts.warmup && rounds.length >= 2) {
    const a = rounds[0].rss, b = rounds[rounds.length - 1].rss;
    const room = a * 0.15;
    if (b > a + room) fail(`RSS grew from ${(a / 1048576).toFixed(1)} MiB (round 1) to ${(b / 1048576).toFixed(1)} MiB (round ${rounds.length}): more than ${(room / 1048576).toFixed(1)} MiB`);
  }

  // Shutdown, in a storm: SIGTERM while 40 actions run at once (their answers
  // no longer judged: arbor is going away under them). Then: status 0 (nothing
  // failed: every service stopped when asked), no zombie, and no process a
  // program started left alive, before its directory (which would end them by
  // themselves) is removed.
  const storm = [];
  for (let i = 0; i < 40; i++) {
    const name = chooseAction();
    counts[name] = (counts[name] || 0) + 1;
    storm.push(actions[name]().catch(() => {}));
  }
  await Promise.race([Promise.allSettled(storm.slice(0, 10)), sleep(500)]);
  note('SIGTERM in the storm');
  const termAt = performance.now();
  process.kill(arbor.pid, 'SIGTERM');
  const ex = await Promise.race([arborExit, sleep(30000).then(() => null)]);
  if (ex === null) fail('arbor did not exit within 30 s of SIGTERM');
  say(`chaos: SIGTERM in a storm of 40 actions: arbor exited in ${Math.round(performance.now() - termAt)} ms`);
  await Promise.allSettled(storm);
  const pids = recordedPids();
  if (ex.code !== 0) fail(`arbor exited with ${ex.code !== null ? `status ${ex.code}` : `signal ${ex.sig}`} after SIGTERM (expected 0)`);
  if (/still had handles open/.test(arborErr)) fail('arbor: "the loop still had handles open at exit"');
  for (const f of followers) f.stop();
  const left = pids.filter((p) => isOurs(p.pid));
  if (left.length) fail(`${left.length} of ${pids.length} processes left after arbor exited: ${left.map((p) => `${p.pid} (${p.mode} of ${p.name})`).join(', ')}`);
  const z = await lingeringZombies(process.pid);
  if (z.length) fail(`zombie children of the test: ${z.join(' ')}`);
  const events = followers[0].events;
  say(`chaos: PASS seed ${opts.seed}: ${actionsDone} actions (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}), ${rounds.length} rounds, ${warmup0} warm-up actions, ${pids.length} processes started and none left, ${events} events followed, ${followers.reduce((s, f) => s + f.gaps, 0)} gaps, RSS by round ${rounds.map((r) => (r.rss / 1048576).toFixed(1)).join(' ')} MiB, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

function cleanup() {
  if (arbor && arbor.exitCode === null && arbor.signalCode === null) {
    try { arbor.kill('SIGKILL'); } catch { /* gone */ }
  }
  fs.rmSync(work, { recursive: true, force: true });   // ends every program (prog.sh)
}

// timeout(1) (run.sh) signals the whole process group: arbor shuts down by
// itself; the programs' directory goes with us.
process.on('SIGTERM', () => {
  console.log(`chaos: SIGTERM (seed ${opts.seed}): the last actions:`);
  for (const l of logTail) console.log(`  ${l}`);
  cleanup();
  process.exit(1);
});

main().then(() => {
  cleanup();
  process.exit(0);
}, (e) => {
  console.log(`chaos: FAIL (seed ${opts.seed}; rerun with CHAOS_SEED=${opts.seed}): ${e instanceof Failure ? e.message : e.stack}`);
  console.log('chaos: the last actions:');
  for (const l of logTail) console.log(`  ${l}`);
  console.log("chaos: arbor's stderr (tail):");
  console.log(arborErr.split('\n').slice(-25).map((l) => `  ${l}`).join('\n'));
  cleanup();
  process.exit(1);
});
