// tests/chaos/plot.mjs CSV OUT.png [TITLE]: the soak's figure.
//
// Reads the CSV chaos.mjs --csv writes (a /metrics scrape every few seconds)
// and draws four panels over time: arbor's resident memory, its open fds, the
// events recorded and dropped by the ring (with the SSE clients' gaps), and the
// restarts and failures. It writes OUT.svg, then renders it to OUT.png with
// headless Chromium's --screenshot (Debian's /usr/bin/chromium, or $CHROMIUM,
// which the browser tests already need): no plotting package. Without Chromium
// the SVG is still written and the exit status is 77.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [csvPath, outPng, title = 'arbor soak'] = process.argv.slice(2);
if (!csvPath || !outPng || !outPng.endsWith('.png')) {
  console.error('usage: node tests/chaos/plot.mjs SOAK.csv OUT.png [TITLE]');
  process.exit(2);
}

const lines = fs.readFileSync(csvPath, 'utf8').trim().split('\n');
const head = lines[0].split(',');
const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], Number(v)])));
if (rows.length < 2) {
  console.error(`${csvPath}: fewer than two samples`);
  process.exit(1);
}

const W = 1000, PH = 190, LEFT = 80, RIGHT = 200, TOP = 50, GAP = 40;
const panels = [
  { title: 'resident memory (MiB)', series: [['rss_bytes', '#1f77b4', (v) => v / 1048576, 'RSS']] },
  { title: 'open file descriptors', series: [['open_fds', '#2ca02c', (v) => v, 'fds']] },
  { title: 'events', series: [['events_total', '#9467bd', (v) => v, 'recorded'],
                              ['events_dropped', '#d62728', (v) => v, 'overwritten (ring)'],
                              ['sse_gaps', '#ff7f0e', (v) => v, 'SSE gaps']] },
  { title: 'restarts and failures', series: [['restarts_total', '#8c564b', (v) => v, 'restarts'],
                                             ['failures_total', '#e377c2', (v) => v, 'failures']] },
];
const H = TOP + panels.length * (PH + GAP) + 20;
const tMax = rows[rows.length - 1].t_s;
const x = (t) => LEFT + ((W - LEFT - RIGHT) * t) / (tMax || 1);
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
const fmt = (v) => (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : Number(v.toFixed(1)).toString());

let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${LEFT}" y="28" font-size="16" font-weight="bold">${esc(title)}</text>\n`;

panels.forEach((p, k) => {
  const y0 = TOP + k * (PH + GAP);
  let max = 0;
  for (const [col, , f] of p.series) for (const r of rows) max = Math.max(max, f(r[col]));
  max = max > 0 ? max * 1.1 : 1;
  const y = (v) => y0 + PH - (PH * v) / max;
  svg += `<text x="${LEFT}" y="${y0 - 6}" font-weight="bold">${esc(p.title)}</text>\n`;
  svg += `<rect x="${LEFT}" y="${y0}" width="${W - LEFT - RIGHT}" height="${PH}" fill="none" stroke="#999"/>\n`;
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg += `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`;
    svg += `<text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>\n`;
  }
  for (let i = 0; i <= 5; i++) {
    const t = (tMax * i) / 5;
    svg += `<text x="${x(t)}" y="${y0 + PH + 14}" text-anchor="middle">${Math.round(t)} s</text>`;
  }
  p.series.forEach(([col, color, f, label], j) => {
    const pts = rows.map((r) => `${x(r.t_s).toFixed(1)},${y(f(r[col])).toFixed(1)}`).join(' ');
    svg += `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.8"/>\n`;
    const last = f(rows[rows.length - 1][col]);
    svg += `<text x="${W - RIGHT + 8}" y="${y0 + 14 + j * 16}" fill="${color}">${esc(label)}: ${fmt(last)}</text>\n`;
  });
});
svg += '</svg>\n';

const outSvg = outPng.replace(/\.png$/, '.svg');
fs.writeFileSync(outSvg, svg);
console.log(`plot: ${outSvg}`);

const chromium = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .filter(Boolean).find((c) => { try { fs.accessSync(c, fs.constants.X_OK); return true; } catch { return false; } });
if (!chromium) {
  console.log('plot: no Chromium (/usr/bin/chromium, or set CHROMIUM): SVG only');
  process.exit(77);
}
// The SVG inside a page of its exact size, so the screenshot is the figure.
const page = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'arbor-plot-')), 'plot.html');
fs.writeFileSync(page, `<!doctype html><html><body style="margin:0">${svg}</body></html>`);
execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  `--window-size=${W},${H}`, `--screenshot=${path.resolve(outPng)}`, `file://${page}`],
{ stdio: ['ignore', 'ignore', 'pipe'], timeout: 60000 });
fs.rmSync(path.dirname(page), { recursive: true, force: true });
console.log(`plot: ${outPng}`);
