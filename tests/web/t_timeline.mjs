// The timeline: a bar per node (data-id), a click on a bar selects that node,
// and the download buttons give the trace in both formats (the same bytes as
// GET /api/v1/trace would: Chrome's traceEvents, OTLP's resourceSpans).
import fs from 'node:fs';
import { test, assert, log, loadDashboard, findNode, waitUntil, waitForText } from './lib.mjs';

await test('web_timeline_bars_select_and_download', async (t) => {
  await t.arbor();
  const hb = await waitUntil('heartbeat', () => findNode(t.base, 'heartbeat', 'service'));
  const { page } = await t.page({ width: 1280, height: 1000 });
  await loadDashboard(page, t.base);
  const bars = page.getByTestId('timeline-bar');
  await page.getByTestId('timeline').scrollIntoViewIfNeeded();
  await waitUntil('timeline bars', async () => await bars.count() >= 3, { timeoutMs: 15000 });
  log(`${await bars.count()} timeline bars`);

  const bar = page.locator(`[data-testid="timeline-bar"][data-id="${hb.id}"]`);
  await bar.first().scrollIntoViewIfNeeded();
  await bar.first().click();
  await waitForText(page.getByTestId('detail-id'), new RegExp(`(^|\\D)${hb.id}(\\D|$)`));
  assert(new URL(page.url()).hash === `#/node/${hb.id}`, `a click on heartbeat's bar selects it (hash ${page.url()})`);

  for (const [testid, check] of [
    ['download-chrome', (j) => Array.isArray(j.traceEvents) && j.traceEvents.length > 0],
    ['download-otlp', (j) => Array.isArray(j.resourceSpans) && j.resourceSpans.length > 0],
  ]) {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testid).click()]);
    const file = await dl.path();
    const body = JSON.parse(fs.readFileSync(file, 'utf8'));
    log(`${testid}: ${dl.suggestedFilename()} (${fs.statSync(file).size} bytes)`);
    assert(check(body), `${testid} gives the trace in its format`);
  }
});
