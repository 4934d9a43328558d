#!/usr/bin/env node
// bench/web_render.mjs - the dashboard's benchmarks (issue 8), in headless
// Chromium (Debian's, driven by tests/web's playwright-core) against
// bench_web_tree (a NODES-node tree and an event generator, no demo noise).
//
//   node bench/web_render.mjs [BUILD_DIR]     env: REPS (5), NODES (10000),
//        WEB_GROUPS (100: the tree is the root, 100 groups of 98 waiting tasks and
//        the generator's group), WEB_RATE (1000 events/s), WEB_SECONDS (30),
//        WEB_VIEWPORT (1280x800), WEB_ONLY (render or stream: that part alone)
//
// render  Time to first render of the NODES-node tree, REPS times, each in a
//         fresh browser context (empty cache) on the same server: from the
//         navigation's start (performance.now() = 0 in the page) to the first
//         animation frame at which (a) tree rows are in the DOM and (b) the
//         summary's count-<STATE> elements add up to the server's node count.
//         Both are checked once per frame by a script installed before the
//         page's own (addInitScript), so the figure is the page's own clock.
//         Target: <= 1000 ms.
// stream  Whether the view keeps up with WEB_RATE events/s for WEB_SECONDS s,
//         REPS times, each on a fresh server and page. The page's EventSource
//         listeners are wrapped (before the app loads) to record the last event
//         seq each has handled, and a sample of handling lags (handler end minus
//         the event's own time, both wall clocks of this machine). Every second:
//         backlog = events the server recorded (its "stats") - the last seq the
//         page handled; and the summary's FINISHED count against the server's
//         (the generator's tasks finish at once; a page that keeps fewer
//         finished nodes than the server shows as a constant gap once full,
//         a page that lags as a growing one). No growing backlog: the backlog's mean over the last third
//         is not above the first third's by more than a second's worth of events,
//         and after the generator stops the page catches up (the last seq, and
//         the summary's counts of live nodes equal the server's) within 2 s. Also frames per second and long tasks
//         (> 50 ms) while it runs.
// Prints RESULT lines, then medians (min-max). Not a test: figures go to
// docs/PERFORMANCE.md by hand. Exit 77 when Chromium or playwright-core is absent.
import path from 'node:path';
import { root, startArbor, stopArbor, launchBrowser, Skip, waitUntil } from '../tests/web/lib.mjs';

const build = path.resolve(root, process.argv[2] || 'build/gcc-opt');
const REPS = Number(process.env.REPS || 5);
const NODES = Number(process.env.NODES || 10000);
const GROUPS = Number(process.env.WEB_GROUPS || 100);
const RATE = Number(process.env.WEB_RATE || 1000);
const SECONDS = Number(process.env.WEB_SECONDS || 30);
const ONLY = process.env.WEB_ONLY || '';
const [VW, VH] = (process.env.WEB_VIEWPORT || '1280x800').split('x').map(Number);
const server = path.join(build, 'bench', 'bench_web_tree');
const STATES = ['CREATED', 'STARTING', 'STARTED', 'STOPPING', 'STOPPED', 'FINISHED'];

// Installed before the page's scripts: per-frame checks, the EventSource
// wrapper, long tasks. Everything lands in window.__bench.
function probe({ states, want }) {
  const B = (window.__bench = { rowsAt: 0, summaryAt: 0, bothAt: 0, lastSeq: 0, handled: 0,
    lags: [], frames: 0, longTasks: 0, longMs: 0, want });
  const readCounts = () => {
    const c = {};
    for (const s of states) {
      const el = document.querySelector(`[data-testid="count-${s}"]`);
      if (!el) return null;
      const digits = (el.textContent || '').replace(/\D/g, '');
      c[s] = digits ? Number(digits) : 0;
    }
    return c;
  };
  const summaryTotal = () => {
    const c = readCounts();
    return c ? Object.values(c).reduce((x, y) => x + y, 0) : -1;
  };
  B.readSummary = summaryTotal;
  B.readCounts = readCounts;
  const frame = (ts) => {
    B.frames++;
    if (!B.bothAt) {
      const now = performance.now();
      if (!B.rowsAt && document.querySelector('[data-testid="tree-row"]')) B.rowsAt = now;
      if (!B.summaryAt && B.want && summaryTotal() === B.want) B.summaryAt = now;
      if (B.rowsAt && B.summaryAt) B.bothAt = Math.max(B.rowsAt, B.summaryAt);
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) { B.longTasks++; B.longMs += e.duration; } })
      .observe({ type: 'longtask', buffered: true });
  } catch { /* no longtask timing */ }

  // Every listener the page puts on an EventSource records what it handled.
  const ES = window.EventSource;
  if (!ES) return;
  const wrapped = new WeakMap();
  const wrap = (fn) => {
    if (typeof fn !== 'function') return fn;
    if (!wrapped.has(fn)) {
      wrapped.set(fn, function (ev) {
        const r = fn.apply(this, arguments);
        const seq = Number(ev && ev.lastEventId);
        if (seq > B.lastSeq) {
          B.lastSeq = seq;
          B.handled++;
          if (B.sampling && seq % 10 === 0) {
            try { B.lags.push(Date.now() - Date.parse(JSON.parse(ev.data).time)); } catch { /* not JSON */ }
          }
        }
        return r;
      });
    }
    return wrapped.get(fn);
  };
  const add = ES.prototype.addEventListener;
  const remove = ES.prototype.removeEventListener;
  ES.prototype.addEventListener = function (type, fn, opts) { return add.call(this, type, wrap(fn), opts); };
  ES.prototype.removeEventListener = function (type, fn, opts) { return remove.call(this, type, wrapped.get(fn) || fn, opts); };
  for (const prop of ['onmessage']) {
    const d = Object.getOwnPropertyDescriptor(ES.prototype, prop);
    if (d && d.set) Object.defineProperty(ES.prototype, prop, { ...d, set(fn) { d.set.call(this, wrap(fn)); } });
  }
}

// A bench_web_tree server: its stdout lines answer our stdin commands in order.
async function startServer() {
  const d = await startArbor([String(NODES), String(GROUPS)], { bin: server, stdin: 'pipe', timeoutMs: 60000 });
  let buf = '';
  const waiting = [];
  d.proc.stdout.on('data', (s) => {
    buf += s;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (/^(OK|STATS|ERR)/.test(line) && waiting.length) waiting.shift()(line);
    }
  });
  d.cmd = (c) => new Promise((resolve) => { waiting.push(resolve); d.proc.stdin.write(`${c}\n`); });
  d.stats = async () => {
    const kv = {};
    for (const f of (await d.cmd('stats')).split(' ').slice(1)) { const [k, v] = f.split('='); kv[k] = Number(v); }
    return kv;
  };
  return d;
}

async function openProbedPage(browser, want) {
  const context = await browser.newContext({ viewport: { width: VW, height: VH } });
  const page = await context.newPage();
  await page.addInitScript(probe, { states: STATES, want });
  return { context, page };
}

const med = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };
const pct = (a, q) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN; };
const mmm = (a, d = 0) => (a.length ? `${med(a).toFixed(d)} (${Math.min(...a).toFixed(d)}-${Math.max(...a).toFixed(d)})` : '-');
const mean = (a) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN);

async function renderRuns(browser) {
  const srv = await startServer();
  const out = [];
  try {
    const want = (await srv.stats()).nodes;
    for (let rep = 1; rep <= REPS; rep++) {
      const { context, page } = await openProbedPage(browser, want);
      await page.goto(`${srv.url}/`);
      const B = await waitUntil('the first render (rows and the summary total)', () => page.evaluate(() =>
        (window.__bench.bothAt ? { rows: window.__bench.rowsAt, summary: window.__bench.summaryAt, both: window.__bench.bothAt,
          domRows: document.querySelectorAll('[data-testid="tree-row"]').length } : null)), { timeoutMs: 30000, everyMs: 100 })
        .catch(async (e) => {
          const s = await page.evaluate(() => ({ rowsAt: window.__bench.rowsAt, total: window.__bench.readSummary() })).catch(() => ({}));
          throw new Error(`${e.message}; rows at ${s.rowsAt} ms, summary total ${s.total} of ${want}`);
        });
      const nav = await page.evaluate(() => { const n = performance.getEntriesByType('navigation')[0]; return n ? { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd } : {}; });
      const r = { rep, nodes: want, first_rows_ms: B.rows, summary_ms: B.summary, render_ms: B.both, dom_rows: B.domRows, dcl_ms: nav.dcl, load_ms: nav.load };
      console.log(`RESULT bench=web_render ${Object.entries(r).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v * 10) / 10 : v}`).join(' ')}`);
      out.push(r);
      await context.close();
    }
  } finally {
    await stopArbor(srv);
  }
  return out;
}

async function streamRun(browser, rep) {
  const srv = await startServer();
  try {
    const want = (await srv.stats()).nodes;
    const { context, page } = await openProbedPage(browser, want);
    await page.goto(`${srv.url}/`);
    await waitUntil('the page ready (summary total)', () => page.evaluate(() => window.__bench.bothAt > 0), { timeoutMs: 30000, everyMs: 100 });
    await page.evaluate(() => { const B = window.__bench; B.sampling = true; B.frames = 0; B.longTasks = 0; B.longMs = 0; B.lags = []; });
    const s0 = await srv.stats();
    await waitUntil('the page at the server\'s last seq', async () => (await page.evaluate(() => window.__bench.lastSeq)) >= s0.recorded, { timeoutMs: 10000 })
      .catch(() => { /* a page that never saw an event yet: the backlog shows it */ });
    const t0 = Date.now();
    await srv.cmd(`rate ${RATE}`);
    const samples = [];
    for (let sec = 1; sec <= SECONDS; sec++) {
      await new Promise((r) => setTimeout(r, t0 + sec * 1000 - Date.now()));   // a sampling clock, not a wait for a condition
      // The page first, then the server: the backlog is then never below the
      // truth (events recorded in between count as not yet handled).
      const pg = await page.evaluate(() => ({ seq: window.__bench.lastSeq, c: window.__bench.readCounts() }));
      const st = await srv.stats();
      samples.push({ sec, backlog: st.recorded - pg.seq, finished_behind: st.FINISHED - (pg.c ? pg.c.FINISHED : 0), recorded: st.recorded - s0.recorded });
    }
    await srv.cmd('rate 0');
    const tStop = Date.now();
    const end = await srv.stats();
    let caughtUp = -1;
    // Caught up: the last event handled, and the summary's live counts (every
    // state but FINISHED, which the page may cap at its own retention) equal
    // to the server's.
    const live = (c) => (c ? STATES.filter((x) => x !== 'FINISHED').reduce((a, x) => a + c[x], 0) : -1);
    await waitUntil('the page caught up (seq and summary)', async () => {
      const pg = await page.evaluate(() => ({ seq: window.__bench.lastSeq, c: window.__bench.readCounts() }));
      return pg.seq >= end.recorded && live(pg.c) === live(end);
    }, { timeoutMs: 15000, everyMs: 20 }).then(() => { caughtUp = Date.now() - tStop; }, () => {});
    const pg = await page.evaluate(() => { const B = window.__bench; return { frames: B.frames, longTasks: B.longTasks, longMs: B.longMs, lags: B.lags, seq: B.lastSeq, c: B.readCounts() }; });
    const elapsed = (tStop - t0) / 1000;
    const third = Math.max(1, Math.floor(samples.length / 3));
    const first = mean(samples.slice(0, third).map((x) => x.backlog));
    const last = mean(samples.slice(-third).map((x) => x.backlog));
    const r = {
      rep, rate: RATE, seconds: SECONDS,
      server_events_per_s: (end.recorded - s0.recorded) / elapsed,
      backlog_first_third: first, backlog_last_third: last, backlog_max: Math.max(...samples.map((x) => x.backlog)),
      finished_behind_max: Math.max(...samples.map((x) => x.finished_behind)),
      lag_p50_ms: pct(pg.lags, 0.5), lag_p99_ms: pct(pg.lags, 0.99), lag_max_ms: pg.lags.length ? Math.max(...pg.lags) : NaN,
      catchup_ms: caughtUp, fps: pg.frames / ((Date.now() - t0) / 1000), long_tasks: pg.longTasks, long_ms: pg.longMs,
      server_finished: end.FINISHED, page_finished: pg.c ? pg.c.FINISHED : -1,
      keeps_up: last <= first + RATE && caughtUp >= 0 && caughtUp <= 2000 ? 1 : 0,
    };
    console.log(`RESULT bench=web_stream ${Object.entries(r).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v * 10) / 10 : v}`).join(' ')}`);
    console.log(`  backlog per second (events): ${samples.map((x) => x.backlog).join(' ')}`);
    console.log(`  summary FINISHED behind the server's, per second: ${samples.map((x) => x.finished_behind).join(' ')}`);
    await context.close();
    return r;
  } finally {
    await stopArbor(srv);
  }
}

let browser;
try {
  browser = await launchBrowser();
  const version = browser.version();
  console.log(`web bench: Chromium ${version}, ${NODES} nodes (${GROUPS} groups), viewport ${VW}x${VH}, REPS=${REPS}, stream ${RATE} events/s for ${SECONDS} s; load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const renders = ONLY === 'stream' ? [] : await renderRuns(browser);
  const streams = [];
  if (ONLY !== 'render') for (let rep = 1; rep <= REPS; rep++) streams.push(await streamRun(browser, rep));
  const col = (a, k) => a.map((x) => x[k]).filter((v) => Number.isFinite(v));
  console.log(`\ndashboard, medians of ${REPS} runs (min-max)`);
  if (renders.length) console.log(`first render of ${NODES} nodes (target <= 1000 ms): ${mmm(col(renders, 'render_ms'))} ms; first rows ${mmm(col(renders, 'first_rows_ms'))} ms, summary complete ${mmm(col(renders, 'summary_ms'))} ms, DOMContentLoaded ${mmm(col(renders, 'dcl_ms'))} ms, rows in the DOM ${mmm(col(renders, 'dom_rows'))}`);
  if (streams.length) {
    console.log(`${RATE} events/s for ${SECONDS} s: server recorded ${mmm(col(streams, 'server_events_per_s'))}/s; backlog (events) first third ${mmm(col(streams, 'backlog_first_third'))}, last third ${mmm(col(streams, 'backlog_last_third'))}, max ${mmm(col(streams, 'backlog_max'))}`);
    console.log(`  handling lag ms p50 ${mmm(col(streams, 'lag_p50_ms'), 1)}, p99 ${mmm(col(streams, 'lag_p99_ms'), 1)}, max ${mmm(col(streams, 'lag_max_ms'), 1)}; summary FINISHED behind max ${mmm(col(streams, 'finished_behind_max'))}; caught up ${mmm(col(streams, 'catchup_ms'))} ms after the stop`);
    console.log(`  frames/s ${mmm(col(streams, 'fps'), 1)}, long tasks ${mmm(col(streams, 'long_tasks'))} (${mmm(col(streams, 'long_ms'))} ms); keeps up in ${streams.filter((x) => x.keeps_up).length} of ${streams.length} runs`);
  }
} catch (e) {
  if (e instanceof Skip) {
    console.log(`SKIPPED: web bench: ${e.message}`);
    process.exitCode = 77;
  } else {
    console.log(`web bench failed: ${e.stack || e}`);
    process.exitCode = 1;
  }
} finally {
  if (browser) await browser.close().catch(() => {});
}
