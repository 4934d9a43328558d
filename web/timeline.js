// timeline.js - a Gantt of recent nodes, from the Chrome trace the server
// exports (GET /api/v1/trace?format=chrome, docs/tracing.md), and the trace
// download links.
//
//   const tl = mountTimeline(section, { api, onSelect(id) });
//   tl.focus(id);      // only that subtree (&root=ID); null: everything
//
// What is drawn. One row per node, in tree order (parents above children,
// siblings by id, i.e. creation order), for the 500 nodes with the latest
// news: a finished node's is its end, a running node's its start (else the
// 500 oldest of 10,000 running tasks would hide every recent failure), plus
// their ancestors, so that the rows form a tree. A bar spans the node's slice (CREATED to FINISHED, or to the
// export while it runs); its colour says the outcome and so does a second cue,
// for whoever cannot tell the colours apart: running bars end in an arrow, OK
// bars are plain, FAILED bars are hatched and end in a cross, CANCELLED bars are
// hollow and dashed. The trace's instants mark restarts (a triangle, on the
// service's row) and failures (a diamond, on the failing node's row).
//
// How. A <canvas> the size of the visible part only (sized in device pixels,
// so it stays sharp at any devicePixelRatio) is redrawn on scroll, resize and
// refresh; a 10,000-row canvas would not fit a GPU. Over it, a transparent
// list has one element per bar (role=option, data-testid="timeline-bar",
// data-id, an aria-label saying what the bar says), positioned on the bar: it
// takes the pointer (hover shows name and duration, a click calls onSelect),
// gives keyboard users arrows and Enter, and lets screen readers and tests see
// the bars a canvas would hide. Styles are set from script (element.style),
// which the page's CSP allows where inline style attributes are refused.
//
// Refresh: every few seconds while the section is on screen and the tab is
// visible, never two fetches at once, and less often when a fetch took long
// (a big tree's trace is megabytes). The page mounts the timeline only once
// its tree has loaded (app.js), so the first fetch does not compete with it.

const MAX_NODES = 500;
const ROW_H = 18;                // CSS px per row
const AXIS_H = 22;               // the time axis above the rows
const VIEW_ROWS = 18;            // rows visible before the list scrolls
const REFRESH_MS = 4000;
const LABEL_MAX = 220;           // the name column's width at most, CSS px
const MIN_WINDOW_US = 10e6;      // the time axis spans 10 s at least

// ------------------------------------------------------------------ data

// The trace's slices and marks, the MAX_NODES most recent in tree order.
// Returns { rows: [{id, name, kind, outcome, unfinished, ts, end, depth,
// restarts, marks: [{ts, kind: 'restart'|'failure', text}]}], t0, t1, total }:
// the time axis runs from t0 to t1 (the export).
//
// t0 is where the earliest finished row started, not the earliest row: the
// root and the services run from the daemon's start, and after a week of that
// an axis from there would squeeze the last hour's failures into a pixel.
// Rows that started before t0 are cut at the axis's start (drawn so). With
// nothing finished, or a window under MIN_WINDOW_US, the window grows back
// towards the earliest row.
export function layoutTrace(trace, maxNodes = MAX_NODES) {
  const events = (trace && trace.traceEvents) || [];
  const byId = new Map();
  let t1 = 0;
  for (const e of events) {
    if (e.ph !== 'X' || !e.args || e.args.id == null) continue;
    const end = e.ts + (e.dur || 0);
    if (end > t1) t1 = end;
    byId.set(e.args.id, {
      id: e.args.id, parent: e.args.parent_id, name: e.name, kind: e.args.kind || e.cat,
      outcome: e.args.outcome || 'NONE', unfinished: !!e.args.unfinished,
      restarts: e.args.restarts || 0, ts: e.ts, end, marks: [],
      error: e.args.error ? `${e.args.error.name}: ${e.args.error.message}` : '',
    });
  }
  const total = byId.size;
  let kept = [...byId.values()];
  if (kept.length > maxNodes) {
    const news = (n) => (n.unfinished ? n.ts : n.end);
    kept.sort((a, b) => news(b) - news(a) || b.id - a.id);
    kept = kept.slice(0, maxNodes);
  }
  const keep = new Map(kept.map((n) => [n.id, n]));
  for (const n of kept) {             // and their ancestors (the trace has them all)
    for (let a = byId.get(n.parent); a && !keep.has(a.id); a = byId.get(a.parent)) keep.set(a.id, a);
  }
  kept = [...keep.values()];
  for (const e of events) {
    if (e.ph !== 'i' || !e.args) continue;
    const n = keep.get(e.args.node);
    if (!n) continue;
    if (e.name === 'restart') n.marks.push({ ts: e.ts, kind: 'restart', text: 'restart' });
    else if (String(e.name || '').startsWith('failed')) {
      n.marks.push({ ts: e.ts, kind: 'failure',
        text: e.args.message ? `${e.name} (${e.args.message})` : e.name });
    }
  }
  // Tree order: children under their parent by id; a node whose parent is
  // not kept (the subtree's root, or a gap) starts a tree of its own.
  const children = new Map();
  const tops = [];
  for (const n of kept) {
    if (keep.has(n.parent)) {
      if (!children.has(n.parent)) children.set(n.parent, []);
      children.get(n.parent).push(n);
    } else {
      tops.push(n);
    }
  }
  const byIdOrder = (a, b) => a.id - b.id;
  const rows = [];
  const stack = tops.sort(byIdOrder).reverse().map((n) => [n, 0]);
  while (stack.length) {
    const [n, depth] = stack.pop();
    n.depth = depth;
    rows.push(n);
    const kids = (children.get(n.id) || []).sort(byIdOrder);
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
  }
  let first = Infinity, firstEnded = Infinity;
  for (const n of rows) {
    if (n.ts < first) first = n.ts;
    if (!n.unfinished && n.ts < firstEnded) firstEnded = n.ts;
  }
  if (!rows.length) return { rows, t0: 0, t1, total };
  const t0 = firstEnded === Infinity ? first : Math.max(first, Math.min(firstEnded, t1 - MIN_WINDOW_US));
  return { rows, t0, t1, total };
}

// A duration in microseconds as people read it.
export function formatDuration(us) {
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  const s = us / 1e6;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// Tick positions (µs) for an axis of span us: 1, 2 or 5 times a power of ten,
// about one tick per 90 px.
function ticks(span, px) {
  const want = Math.max(1, Math.floor(px / 90));
  const raw = span / want;
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw) || 10 * p;
  return step;
}

const OUTCOME_TEXT = { NONE: 'running', OK: 'ok', FAILED: 'failed', CANCELLED: 'cancelled' };

function describe(n) {
  const dur = formatDuration(n.end - n.ts);
  const what = n.unfinished ? `running for ${dur}` : `${OUTCOME_TEXT[n.outcome] || n.outcome} after ${dur}`;
  const parts = [`${n.name} (${n.kind}, id ${n.id}): ${what}`];
  const restarts = n.marks.filter((m) => m.kind === 'restart').length;
  if (restarts) parts.push(`${restarts} restart${restarts > 1 ? 's' : ''} shown`);
  if (n.error) parts.push(n.error);
  return parts.join('; ');
}

// ---------------------------------------------------------------- colours

// From the page's custom properties (app.css) when it has them, so light and
// dark follow the page; the fallbacks read on either background.
function palette(el) {
  const cs = getComputedStyle(el);
  const v = (name, dflt) => cs.getPropertyValue(name).trim() || dflt;
  return {
    fg: v('--fg', cs.color || '#1b1f24'),
    muted: v('--muted', '#6e7781'),
    line: v('--line', '#d0d7de'),
    select: v('--select', 'rgba(37, 99, 235, 0.18)'),
    running: v('--accent', '#2f6fde'),
    ok: v('--o-ok', '#1a7f37'),
    failed: v('--o-failed', '#cf222e'),
    cancelled: v('--o-cancelled', '#9a6700'),
    restart: v('--stuck', '#bc4c00'),
    font: `12px ${cs.fontFamily || 'system-ui, sans-serif'}`,
  };
}

// ----------------------------------------------------------------- drawing

function barColour(p, n) {
  if (n.unfinished || n.outcome === 'NONE') return p.running;
  return { OK: p.ok, FAILED: p.failed, CANCELLED: p.cancelled }[n.outcome] || p.muted;
}

// One bar from x0 to x1 on a row whose middle is y, with its outcome's cue;
// cut: it started before the axis does (its left end is notched).
function drawBar(ctx, p, n, x0, x1, y, cut) {
  const h = ROW_H - 6, top = y - h / 2, w = Math.max(2, x1 - x0);
  const c = barColour(p, n);
  ctx.save();
  if (cut) {
    // Everything the bar draws skips a '>' notch at its left end: its start
    // is off the axis. A clip, not paint: the background may be anything.
    ctx.beginPath();
    ctx.moveTo(x0, top - 2);
    ctx.lineTo(x0 + 2e4, top - 2);
    ctx.lineTo(x0 + 2e4, top + h + 2);
    ctx.lineTo(x0, top + h + 2);
    ctx.lineTo(x0 + 5, y);
    ctx.closePath();
    ctx.clip();
  }
  if (n.outcome === 'CANCELLED' && !n.unfinished) {
    ctx.globalAlpha = 0.25;            // hollow: a tint and a dashed outline
    ctx.fillStyle = c;
    ctx.fillRect(x0, top, w, h);
    ctx.globalAlpha = 1;
    ctx.setLineDash([3, 2]);
    ctx.strokeStyle = c;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(x0 + 0.75, top + 0.75, Math.max(0.5, w - 1.5), h - 1.5);
  } else {
    ctx.fillStyle = c;
    ctx.fillRect(x0, top, w, h);
  }
  if (n.outcome === 'FAILED' && !n.unfinished) {
    ctx.beginPath();                   // hatched, and a cross at the end
    ctx.rect(x0, top, w, h);
    ctx.clip();
    ctx.strokeStyle = 'rgba(255, 255, 255, 0.55)';
    ctx.lineWidth = 1.5;
    for (let x = x0 - h; x < x0 + w; x += 6) {
      ctx.moveTo(x, top + h);
      ctx.lineTo(x + h, top);
    }
    ctx.stroke();
    ctx.restore();
    ctx.save();
    ctx.strokeStyle = c;
    ctx.lineWidth = 2;
    ctx.beginPath();
    const cx = x0 + w + 5, r = 3.5;
    ctx.moveTo(cx - r, y - r);
    ctx.lineTo(cx + r, y + r);
    ctx.moveTo(cx + r, y - r);
    ctx.lineTo(cx - r, y + r);
    ctx.stroke();
  } else if (n.unfinished) {
    ctx.fillStyle = c;                 // still running: an arrow at the end
    ctx.beginPath();
    ctx.moveTo(x0 + w, top - 1);
    ctx.lineTo(x0 + w + 6, y);
    ctx.lineTo(x0 + w, top + h + 1);
    ctx.closePath();
    ctx.fill();
  }
  ctx.restore();
}

// A restart (triangle) or failure (diamond) mark at x on the row at y.
function drawMark(ctx, p, kind, x, y) {
  ctx.save();
  ctx.lineWidth = 1;
  ctx.strokeStyle = p.fg;
  ctx.beginPath();
  if (kind === 'restart') {
    ctx.fillStyle = p.restart;
    ctx.moveTo(x, y - 6);
    ctx.lineTo(x + 5, y + 4);
    ctx.lineTo(x - 5, y + 4);
  } else {
    ctx.fillStyle = p.failed;
    ctx.moveTo(x, y - 5);
    ctx.lineTo(x + 5, y);
    ctx.lineTo(x, y + 5);
    ctx.lineTo(x - 5, y);
  }
  ctx.closePath();
  ctx.fill();
  ctx.stroke();
  ctx.restore();
}

// A small canvas with one legend sample drawn as the timeline draws it.
function legendSample(p, what) {
  const c = document.createElement('canvas');
  const dpr = window.devicePixelRatio || 1, w = 34, h = ROW_H;
  c.width = Math.round(w * dpr);
  c.height = Math.round(h * dpr);
  c.style.width = `${w}px`;
  c.style.height = `${h}px`;
  c.style.verticalAlign = 'middle';
  c.setAttribute('aria-hidden', 'true');
  const ctx = c.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (what === 'restart' || what === 'failure') drawMark(ctx, p, what, w / 2, h / 2);
  else drawBar(ctx, p, { outcome: what, unfinished: what === 'NONE' }, 2, w - 10, h / 2);
  return c;
}

// ------------------------------------------------------------------- mount

function el(tag, props = {}, style = {}) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v;
    else if (k in e && !k.includes('-')) e[k] = v;
    else e.setAttribute(k, v);
  }
  Object.assign(e.style, style);
  return e;
}

export function mountTimeline(container, { api, onSelect }) {
  let root = null;                   // focus(): the subtree shown, or null
  let layout = { rows: [], t0: 0, t1: 0, total: 0 };
  let active = -1;                   // the row keyboard and hover point at
  let timer = 0, inFlight = false, lastFetchMs = 0, stale = true, gone = false;
  // Nothing is fetched until the section is on screen (the observer's first
  // call says whether it is): a big tree's trace must not compete with the
  // page's first render when nobody looks at the timeline.
  let onScreen = false;
  let p = palette(container);

  container.replaceChildren();
  const head = el('div', {}, { display: 'flex', flexWrap: 'wrap', alignItems: 'center',
    gap: '6px 14px', margin: '4px 0 6px' });
  const title = el('h2', { text: 'Timeline' }, { fontSize: '1em', margin: '0' });
  const status = el('span', { 'aria-live': 'polite', text: 'loading…' },
    { color: 'var(--muted, inherit)' });
  const legend = el('span', {}, { display: 'inline-flex', flexWrap: 'wrap', gap: '2px 10px',
    alignItems: 'center', fontSize: '0.9em' });
  // Each link on one line; on a narrow screen the second goes under the first.
  const links = el('span', {}, { display: 'inline-flex', flexWrap: 'wrap', gap: '2px 10px',
    marginLeft: 'auto' });
  const chrome = el('a', { 'data-testid': 'download-chrome', text: 'Download trace (Chrome/Perfetto)' },
    { whiteSpace: 'nowrap' });
  const otlp = el('a', { 'data-testid': 'download-otlp', text: 'Download trace (OTLP/JSON)' },
    { whiteSpace: 'nowrap' });
  links.append(chrome, otlp);
  // Narrowed to a subtree (focus(id), the detail panel's "timeline"), the way
  // back to everything is here: nothing else on the page offers it.
  const all = el('button', { type: 'button', text: 'show all nodes', hidden: true });
  head.append(title, all, status, legend, links);

  const scroller = el('div', {}, { position: 'relative', overflowY: 'auto', overflowX: 'hidden',
    border: '1px solid var(--line, #d0d7de)', borderRadius: '6px',
    background: 'var(--panel, transparent)' });
  const canvas = el('canvas', { 'aria-hidden': 'true' }, { position: 'sticky', top: '0',
    left: '0', display: 'block' });
  const list = el('ul', { role: 'listbox', tabIndex: 0,
    'aria-label': 'Timeline bars: arrows move, Enter opens the node' },
  { position: 'absolute', top: '0', left: '0', width: '100%', margin: '0', padding: '0',
    listStyle: 'none', outline: 'none' });
  scroller.append(canvas, list);
  const tip = el('div', { role: 'tooltip' }, { position: 'fixed', zIndex: '10', display: 'none',
    pointerEvents: 'none', maxWidth: '420px', padding: '4px 8px', borderRadius: '4px',
    fontSize: '0.85em', background: 'var(--panel, #fff)', color: 'var(--fg, #1b1f24)',
    border: '1px solid var(--line, #d0d7de)', boxShadow: '0 2px 6px rgba(0,0,0,0.2)' });
  container.append(head, scroller, tip);

  function drawLegend() {
    legend.replaceChildren();
    for (const [what, text] of [['NONE', 'running'], ['OK', 'ok'], ['FAILED', 'failed'],
      ['CANCELLED', 'cancelled'], ['restart', 'restart'], ['failure', 'failure']]) {
      const item = el('span', {}, { whiteSpace: 'nowrap' });
      item.append(legendSample(p, what), ` ${text}`);
      legend.append(item);
    }
  }

  function updateLinks() {
    const q = root != null ? `&root=${root}` : '';
    const suffix = root != null ? `-node-${root}` : '';
    chrome.href = `/api/v1/trace?format=chrome${q}`;
    chrome.download = `arbor-trace${suffix}.json`;
    otlp.href = `/api/v1/trace?format=otlp${q}`;
    otlp.download = `arbor-trace${suffix}.otlp.json`;
  }

  // Geometry: where the name column ends and the time scale.
  function geometry() {
    const w = scroller.clientWidth;
    const labelW = Math.min(LABEL_MAX, Math.max(90, Math.round(w * 0.28)));
    const x0 = labelW + 8, x1 = Math.max(x0 + 40, w - 16);
    const span = Math.max(1, layout.t1 - layout.t0);
    const x = (t) => x0 + ((t - layout.t0) / span) * (x1 - x0);
    return { w, labelW, x0, x1, span, x, xc: (t) => Math.max(x0, x(t)) };
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const total = AXIS_H + layout.rows.length * ROW_H;
    const viewH = Math.min(total, AXIS_H + VIEW_ROWS * ROW_H);
    scroller.style.height = `${viewH + 2}px`;
    list.style.height = `${total}px`;
    const g = geometry();
    const cw = Math.round(g.w * dpr), ch = Math.round(viewH * dpr);
    if (canvas.width !== cw || canvas.height !== ch) {
      canvas.width = cw;
      canvas.height = ch;
      canvas.style.width = `${g.w}px`;
      canvas.style.height = `${viewH}px`;
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.w, viewH);
    ctx.font = p.font;
    ctx.textBaseline = 'middle';
    const top = scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_H));
    const last = Math.min(layout.rows.length, Math.ceil((top + viewH - AXIS_H) / ROW_H) + 1);
    // Rows scrolled up pass under the axis: clip them there rather than paint
    // the axis over them, which needs an opaque background the page may not
    // have (a transparent body would let them show through).
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, AXIS_H, g.w, viewH - AXIS_H);
    ctx.clip();
    for (let i = first; i < last; i++) {
      const n = layout.rows[i];
      const y = AXIS_H + i * ROW_H - top + ROW_H / 2;
      if (i === active) {
        ctx.fillStyle = p.select;
        ctx.fillRect(0, y - ROW_H / 2, g.w, ROW_H);
      }
      ctx.save();
      ctx.beginPath();
      ctx.rect(0, y - ROW_H / 2, g.labelW, ROW_H);
      ctx.clip();
      ctx.fillStyle = p.fg;
      ctx.fillText(n.name, 6 + Math.min(n.depth, 12) * 10, y);
      ctx.restore();
      drawBar(ctx, p, n, g.xc(n.ts), g.xc(n.end), y, n.ts < layout.t0);
      for (const m of n.marks) if (m.ts >= layout.t0) drawMark(ctx, p, m.kind, g.x(m.ts), y);
    }
    ctx.restore();
    // The axis: time before the export.
    ctx.strokeStyle = p.line;
    ctx.fillStyle = p.muted;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, AXIS_H - 0.5);
    ctx.lineTo(g.w, AXIS_H - 0.5);
    const step = ticks(g.span, g.x1 - g.x0);
    ctx.textAlign = 'center';
    for (let t = 0; t <= g.span + 1e-6; t += step) {
      const x = Math.round(g.x(layout.t1 - t)) + 0.5;
      if (x < g.x0 - 1) break;
      ctx.moveTo(x, AXIS_H - 5);
      ctx.lineTo(x, AXIS_H);
      const text = t === 0 ? 'now' : `−${formatDuration(t)}`;
      ctx.fillText(text, Math.min(Math.max(x, g.x0 + 20), g.w - 24), AXIS_H / 2);
    }
    ctx.stroke();
    ctx.textAlign = 'start';
    ctx.fillText(layout.rows.length ? `${layout.rows.length} of ${layout.total} nodes` : '', 6,
      AXIS_H / 2);
  }

  // The list over the bars: one option per row, on its bar (at least 8 px wide
  // so a short-lived node can still be pointed at). A node keeps its element
  // across refreshes (only what changed is set, and it moves only when its row
  // does): whoever holds it (a screen reader, a test's click in flight) must
  // not find it detached every few seconds.
  const bars = new Map();            // node id -> its <li>
  function placeBars() {
    const g = geometry();
    const keep = new Set();
    const set = (li, k, v) => { if (li.getAttribute(k) !== v) li.setAttribute(k, v); };
    layout.rows.forEach((n, i) => {
      keep.add(n.id);
      let li = bars.get(n.id);
      if (!li) {
        li = el('li', { role: 'option', id: `tl-bar-${n.id}`, 'data-testid': 'timeline-bar',
          'data-id': String(n.id) }, { position: 'absolute', height: `${ROW_H}px`, cursor: 'pointer' });
        bars.set(n.id, li);
      }
      set(li, 'data-outcome', n.unfinished ? 'NONE' : n.outcome);
      set(li, 'aria-label', describe(n));
      set(li, 'aria-selected', i === active ? 'true' : 'false');
      set(li, 'data-row', String(i));
      const x0 = g.xc(n.ts), x1 = Math.max(g.xc(n.end), x0 + 8);
      li.style.left = `${x0}px`;
      li.style.width = `${x1 - x0}px`;
      li.style.top = `${AXIS_H + i * ROW_H}px`;
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    for (const [id, li] of bars) {
      if (!keep.has(id)) {
        li.remove();
        bars.delete(id);
      }
    }
    if (layout.rows[active]) list.setAttribute('aria-activedescendant', `tl-bar-${layout.rows[active].id}`);
    else list.removeAttribute('aria-activedescendant');
  }

  function render() {
    if (active >= layout.rows.length) active = layout.rows.length - 1;
    draw();
    placeBars();
  }

  function showTip(i, clientX, clientY) {
    const n = layout.rows[i];
    if (!n) return hideTip();
    tip.replaceChildren();
    const name = el('strong', { text: n.name });
    const dur = formatDuration(n.end - n.ts);
    const what = n.unfinished ? `running for ${dur}` : `${OUTCOME_TEXT[n.outcome] || n.outcome} after ${dur}`;
    tip.append(name, ` ${n.kind} #${n.id}`, el('br'), what);
    for (const m of n.marks.slice(-4)) {
      tip.append(el('br'), `${m.kind === 'restart' ? '▲' : '◆'} ${m.text}, ${formatDuration(layout.t1 - m.ts)} ago`);
    }
    tip.style.display = 'block';
    const r = tip.getBoundingClientRect();
    tip.style.left = `${Math.min(clientX + 12, window.innerWidth - r.width - 4)}px`;
    tip.style.top = `${Math.min(clientY + 14, window.innerHeight - r.height - 4)}px`;
  }
  function hideTip() {
    tip.style.display = 'none';
  }

  function setActive(i, scroll) {
    const old = list.querySelector('[aria-selected="true"]');
    if (old) old.setAttribute('aria-selected', 'false');
    active = i;
    const li = layout.rows[i] && list.children[i];
    if (li) {
      li.setAttribute('aria-selected', 'true');
      list.setAttribute('aria-activedescendant', li.id);
      if (scroll) {
        const y = i * ROW_H, viewRows = scroller.clientHeight - AXIS_H;
        if (y < scroller.scrollTop) scroller.scrollTop = y;
        else if (y + ROW_H > scroller.scrollTop + viewRows) scroller.scrollTop = y + ROW_H - viewRows;
      }
    }
    draw();
  }

  const rowOf = (target) => (target && target.dataset && target.dataset.row != null
    ? Number(target.dataset.row) : -1);
  list.addEventListener('pointermove', (e) => {
    const i = rowOf(e.target);
    if (i < 0) return hideTip();
    showTip(i, e.clientX, e.clientY);
  });
  list.addEventListener('pointerleave', hideTip);
  list.addEventListener('click', (e) => {
    const i = rowOf(e.target);
    if (i < 0) return;
    setActive(i, false);
    onSelect(layout.rows[i].id);
  });
  list.addEventListener('keydown', (e) => {
    const n = layout.rows.length;
    if (!n) return;
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: VIEW_ROWS, PageUp: -VIEW_ROWS }[e.key];
    if (step) {
      setActive(Math.min(n - 1, Math.max(0, (active < 0 ? -1 : active) + step)), true);
    } else if (e.key === 'Home' || e.key === 'End') {
      setActive(e.key === 'Home' ? 0 : n - 1, true);
    } else if (e.key === 'Enter' && active >= 0) {
      onSelect(layout.rows[active].id);
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();           // the tree's own keys must not move too
  });
  // The list draws no focus ring of its own (it is transparent): the frame does.
  list.addEventListener('focus', () => {
    scroller.style.outline = '2px solid var(--focus, #2563eb)';
    if (active < 0 && layout.rows.length) setActive(0, true);
  });
  list.addEventListener('blur', () => { scroller.style.outline = ''; });
  scroller.addEventListener('scroll', () => { hideTip(); draw(); }, { passive: true });

  // --- fetching -----------------------------------------------------------

  async function refresh() {
    clearTimeout(timer);
    timer = 0;
    if (inFlight || gone) return;
    if (!onScreen || document.hidden) {
      stale = true;                    // fetched again when shown
      return;
    }
    inFlight = true;
    const started = performance.now();
    const want = root;
    try {
      const trace = await api.get(`/api/v1/trace?format=chrome${want != null ? `&root=${want}` : ''}`);
      if (want === root) {
        // The keyboard's row stays on its node: rows shift as nodes come and go.
        const activeId = layout.rows[active] ? layout.rows[active].id : null;
        layout = layoutTrace(trace);
        if (activeId != null) active = layout.rows.findIndex((n) => n.id === activeId);
        status.textContent = '';
        stale = false;
        render();
      }
    } catch (err) {
      // A focused node the server no longer knows stays unknown: asking again
      // every few seconds would only log a 404 each time. focus() asks anew.
      // (Unless focus() moved on meanwhile: then this answer is moot.)
      if (want === root) {
        gone = !!(err && err.status === 404 && want != null);
        status.textContent = gone ? `node ${want} is no longer known` : 'trace unavailable';
        if (gone) {
          layout = layoutTrace(null);  // not the bars of whatever was shown before
          render();
        }
      }
    } finally {
      inFlight = false;
      lastFetchMs = performance.now() - started;
      if (want !== root) refresh();    // focus() changed it meanwhile: fetch that now
      else if (!gone) schedule();
    }
  }

  function schedule() {
    clearTimeout(timer);
    // A trace that took long to make is fetched less often: at most ~10% of
    // the time goes to it.
    timer = setTimeout(refresh, Math.max(REFRESH_MS, lastFetchMs * 10));
  }

  const seen = new IntersectionObserver((entries) => {
    onScreen = entries.some((e) => e.isIntersecting);
    if (onScreen && stale) refresh();
  });
  seen.observe(container);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && stale) refresh();
  });
  new ResizeObserver(() => render()).observe(scroller);
  // Light/dark and zoom (devicePixelRatio) changes: new colours, new pixels.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    p = palette(container);
    drawLegend();
    draw();
  });
  let dprQuery = null;
  const watchDpr = () => {
    dprQuery = matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    dprQuery.addEventListener('change', () => { drawLegend(); draw(); watchDpr(); }, { once: true });
  };
  watchDpr();

  drawLegend();
  updateLinks();
  render();

  function focus(id) {
    const next = id == null ? null : Number(id);
    if (next === root) return;
    root = next;
    active = -1;
    scroller.scrollTop = 0;
    title.textContent = root != null ? `Timeline of node ${root}` : 'Timeline';
    all.hidden = root == null;
    updateLinks();
    stale = true;
    gone = false;
    refresh();
  }
  all.addEventListener('click', () => focus(null));

  return { focus };
}
