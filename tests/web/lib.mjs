// tests/web/lib.mjs - what every browser test shares: an arbor daemon of its own,
// headless Chromium, the admin API and its event stream seen from Node, and the
// test's verdict.
//
// A test is one script (t_*.mjs) run in its own Node process by run.sh, so a
// hang or a crash fails that test alone. It calls test(name, async (t) => {...}):
// everything it starts through t (daemons, browsers) is stopped when the body
// ends, whether it passed, failed or threw, and again from process 'exit' if the
// process is dying some other way. Exit status: 0 pass, 1 fail, 77 skipped.
//
// Waiting is always for a condition with a deadline (waitUntil, Playwright's
// auto-waiting locators); never a fixed sleep standing in for a condition.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const build = path.resolve(root, process.env.ARBOR_BUILD || 'build/gcc-opt');
export const arborBin = path.join(build, 'arbor');
export const shotDir = path.resolve(root, process.env.ARBOR_SHOTS || 'build/web-screenshots');

export const SKIP = 77;

export class Skip extends Error {}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export function log(...args) {
  const ms = (performance.now() / 1000).toFixed(3).padStart(7);
  console.log(`[${ms}s]`, ...args);
}

// ------------------------------------------------------------------ chromium

// Debian's chromium (apt-get install chromium); $CHROMIUM overrides. Returns
// null when there is none, so a test can skip with the reason.
export function findChromium() {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']
    .filter(Boolean);
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch { /* next */ }
  }
  return null;
}

async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch (e) {
    throw new Skip(`playwright-core is not installed (${e.code || e.message}); run: (cd tests/web && npm ci)`);
  }
}

// The flags the validators use (../shared/validators/screenshot.mjs): no
// sandbox (CI runs as root), no GPU, nothing that talks to the network by itself.
const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage',
];

// Headless Chromium for scripts outside test() (bench/web_render.mjs).
export async function launchBrowser() {
  const exe = findChromium();
  if (!exe) throw new Skip('no Chromium (/usr/bin/chromium; apt-get install chromium, or set CHROMIUM)');
  const { chromium } = await loadPlaywright();
  return chromium.launch({ executablePath: exe, headless: true, args: chromiumArgs, timeout: 30000 });
}

// --------------------------------------------------------------- the daemon

// Starts `arbor ARGS...` and resolves when it printed its dashboard URL (the one
// line on stdout, docs/config.md). Its stderr is kept for the failure report.
// `bin` and `stdin` ('ignore' or 'pipe') serve bench_web_tree, which prints
// the same line and takes commands on stdin.
export function startArbor(args, { timeoutMs = 15000, cwd = root, bin = arborBin, stdin = 'ignore' } = {}) {
  return new Promise((resolve, reject) => {
    if (!fs.existsSync(bin)) {
      reject(new Error(`${bin} is missing: run make all`));
      return;
    }
    const proc = spawn(bin, args, { cwd, stdio: [stdin, 'pipe', 'pipe'] });
    const d = { proc, args, stderr: '', url: null, port: 0, exited: null };
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`arbor ${args.join(' ')}: no dashboard URL within ${timeoutMs} ms; stderr:\n${d.stderr}`));
    }, timeoutMs);
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (s) => { d.stderr = (d.stderr + s).slice(-20000); });
    proc.stdout.on('data', (s) => {
      out += s;
      const m = /dashboard at (http:\/\/[^\s]+?:(\d+))\/?\s/.exec(out);
      if (m && !d.url) {
        clearTimeout(timer);
        d.url = m[1];
        d.port = Number(m[2]);
        resolve(d);
      }
    });
    d.exit = new Promise((res) => proc.on('exit', (code, signal) => {
      d.exited = { code, signal };
      clearTimeout(timer);
      if (!d.url) reject(new Error(`arbor ${args.join(' ')} exited (${code ?? signal}) before serving; stderr:\n${d.stderr}`));
      res(d.exited);
    }));
    live.add(d);
  });
}

// SIGTERM, then SIGKILL if it is still there after graceMs (the demo's shutdown
// waits for the crasher's stop, at most 2 s).
export async function stopArbor(d, graceMs = 8000) {
  if (!d || d.exited) return d?.exited;
  if (d.proc.stdin) d.proc.stdin.end();
  d.proc.kill('SIGTERM');
  const t = setTimeout(() => { if (!d.exited) d.proc.kill('SIGKILL'); }, graceMs);
  const r = await d.exit;
  clearTimeout(t);
  live.delete(d);
  return r;
}

const live = new Set();
process.on('exit', () => {
  for (const d of live) if (!d.exited) try { d.proc.kill('SIGKILL'); } catch { /* gone */ }
});

// ---------------------------------------------------------------- the API

export async function apiGet(base, p) {
  const r = await fetch(base + p);
  const body = await r.text();
  if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${body}`);
  return JSON.parse(body);
}

export async function apiPost(base, p, token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const r = await fetch(base + p, { method: 'POST', headers });
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: r.status, body };
}

// Every node of the tree, walked from GET /api/v1/tree (deep enough for the
// demo and the token test's config; they are far below the 1000-node budget).
export async function treeNodes(base) {
  const t = await apiGet(base, '/api/v1/tree?depth=16&limit=1000');
  const all = [];
  const walk = (n, depth) => {
    all.push({ ...n, depth });
    for (const c of n.nodes || []) walk(c, depth + 1);
  };
  walk(t.root, 0);
  return all;
}

export async function findNode(base, name, kind) {
  const n = (await treeNodes(base)).find((x) => x.name === name && (!kind || x.kind === kind));
  if (!n) throw new Error(`no ${kind || 'node'} named ${name} in the tree`);
  return n;
}

// Polls fn() until it returns something truthy; throws with `what` after timeoutMs.
export async function waitUntil(what, fn, { timeoutMs = 10000, everyMs = 50 } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// The event stream as the dashboard gets it (GET /api/v1/events), parsed here
// with a minimal SSE reader: onEvent({id, event, data, at}) where data is the
// parsed JSON and `at` the wall-clock ms it arrived (Date.now(), the clock the
// page's performance.timeOrigin + performance.now() also reads).
export function followEvents(base, onEvent, { after } = {}) {
  const ac = new AbortController();
  const url = `${base}/api/v1/events${after !== undefined ? `?after=${after}` : ''}`;
  const ready = (async () => {
    const r = await fetch(url, { signal: ac.signal, headers: { Accept: 'text/event-stream' } });
    if (r.status !== 200) throw new Error(`GET /api/v1/events: ${r.status}`);
    return r;
  })();
  const done = ready.then(async (r) => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of r.body) {
        const at = Date.now();
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { id: null, event: 'message', data: '', at };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const k = c < 0 ? line : line.slice(0, c);
            const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (k === 'id') ev.id = v;
            else if (k === 'event') ev.event = v;
            else if (k === 'data') ev.data += (ev.data ? '\n' : '') + v;
          }
          if (!ev.data) continue;
          try { ev.data = JSON.parse(ev.data); } catch { /* keep the text */ }
          onEvent(ev);
        }
      }
    } catch (e) {
      if (e.name !== 'AbortError') throw e;
    }
  });
  return { ready, done, close: () => ac.abort() };
}

// ---------------------------------------------------------------- the page

// Opens a page that records everything the load test counts as an error:
// console errors, uncaught exceptions, failed requests, responses >= 400.
async function openPage(t, { width = 1280, height = 800, colorScheme = 'light' } = {}) {
  const browser = await t.browser();
  const context = await browser.newContext({ viewport: { width, height }, colorScheme, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') {
      const loc = m.location();
      errors.push(`console.error: ${m.text()}${loc?.url ? ` @ ${loc.url}:${loc.lineNumber}` : ''}`);
    }
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.name}: ${e.message}`));
  page.on('requestfailed', (r) => {
    // An event stream or a request still open when the test navigates or
    // closes is aborted by the browser, not failed by arbor.
    if (t.closing || r.failure()?.errorText === 'net::ERR_ABORTED') return;
    errors.push(`requestfailed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`http ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  return { page, context, errors };
}

// A tree row by its node id, and the first row showing a name.
export const rowById = (page, id) => page.locator(`[data-testid="tree-row"][data-id="${id}"]`);
export const rowByName = (page, name) =>
  page.locator('[data-testid="tree-row"]').filter({
    has: page.locator('[data-testid="row-name"]', { hasText: new RegExp(`^\\s*${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) }),
  });

// The tree renders only the rows in view: a row that is not in the DOM is
// brought there by selecting its node (the deep link scrolls it into view).
export async function showRow(page, id, timeout = 5000) {
  const row = rowById(page, id);
  if (await row.count() === 0) {
    // (The same hash again would change nothing: step off it first.)
    if (await page.evaluate((h) => location.hash === h, `#/node/${id}`)) await page.evaluate(() => { location.hash = '#/'; });
    await page.evaluate((h) => { location.hash = h; }, `#/node/${id}`);
    await row.waitFor({ state: 'attached', timeout });
  }
  return row;
}

// Loads the dashboard (optionally a hash like #/node/12) and waits until the
// tree has rows and the event stream is live.
export async function loadDashboard(page, base, hash = '') {
  const resp = await page.goto(`${base}/${hash}`, { waitUntil: 'load' });
  assert(resp && resp.status() === 200, `GET / answered ${resp?.status()}`);
  await page.locator('[data-testid="tree-row"]').first().waitFor({ state: 'attached' });
  await waitForText(page.getByTestId('conn-status'), LIVE);
  return resp;
}

// conn-status reads "live" or "reconnecting" (an icon beside the word is fine).
export const LIVE = /(^|\W)live(\W|$)/;
export const RECONNECTING = /(^|\W)reconnecting(\W|$)/;

export async function waitForText(locator, re, timeout = 10000) {
  await locator.first().waitFor({ state: 'attached', timeout });
  const end = Date.now() + timeout;
  let text = '';
  for (;;) {
    text = (await locator.first().textContent({ timeout }).catch(() => '')) || '';
    if (re.test(text)) return text;
    if (Date.now() > end) throw new Error(`timed out: text ${JSON.stringify(text)} never matched ${re}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Selects a node through the deep link and waits for the detail panel to show it.
export async function selectNode(page, id) {
  await page.evaluate((h) => { location.hash = h; }, `#/node/${id}`);
  await waitForText(page.getByTestId('detail-id'), new RegExp(`(^|\\D)${id}(\\D|$)`));
}

export async function screenshot(page, name) {
  fs.mkdirSync(shotDir, { recursive: true });
  const file = path.join(shotDir, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`screenshot: ${path.relative(root, file)}`);
  return file;
}

// ------------------------------------------------------------------- tests

// Runs one test: body(t) gets t.arbor(args) (a daemon, stopped at the end),
// t.browser() (one Chromium, closed at the end), t.page(opts) (a fresh page that
// records errors) and t.base/t.daemon for the first daemon. Exits the process.
export async function test(name, body) {
  const t = { name, daemons: [], closing: false, _browser: null };
  const chromiumPath = findChromium();
  t.arbor = async (args = ['demo', '--port', '0']) => {
    const d = await startArbor(args);
    t.daemons.push(d);
    if (!t.daemon) { t.daemon = d; t.base = d.url; }
    log(`arbor ${args.join(' ')}: ${d.url} (pid ${d.proc.pid})`);
    return d;
  };
  t.browser = async () => {
    if (t._browser) return t._browser;
    const { chromium } = await loadPlaywright();
    t._browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs, timeout: 30000 });
    return t._browser;
  };
  t.page = (opts) => openPage(t, opts);

  let code = 0;
  const started = Date.now();
  try {
    if (!chromiumPath) throw new Skip('no Chromium (/usr/bin/chromium; apt-get install chromium, or set CHROMIUM)');
    await loadPlaywright();
    if (!fs.existsSync(arborBin)) throw new Error(`${arborBin} is missing: run make all`);
    await body(t);
    console.log(`PASS ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    if (e instanceof Skip) {
      console.log(`SKIPPED: ${name}: ${e.message}`);
      code = SKIP;
    } else {
      console.log(`FAIL ${name}: ${e.stack || e}`);
      for (const d of t.daemons) if (d.stderr) console.log(`--- arbor ${d.args.join(' ')} stderr (last lines):\n${d.stderr.split('\n').slice(-15).join('\n')}`);
      code = 1;
    }
  } finally {
    t.closing = true;
    if (t._browser) await t._browser.close().catch(() => {});
    for (const d of t.daemons) await stopArbor(d).catch(() => {});
  }
  process.exit(code);
}

export function chromiumVersion(p = findChromium()) {
  try { return execFileSync(p, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return ''; }
}
