// Cancel from the UI: the button asks first (confirm-no sends nothing), then
// confirm-ok posts the cancel, the result shows 202, and the API reports the
// node FINISHED / CANCELLED; the row says so too.
import { test, assert, log, loadDashboard, selectNode, findNode, apiGet, rowById, showRow, waitUntil, waitForText } from './lib.mjs';

await test('web_cancel_from_ui_cancels_node', async (t) => {
  await t.arbor();
  const { page } = await t.page();
  const hb = await waitUntil('heartbeat STARTED', async () => {
    const n = await findNode(t.base, 'heartbeat', 'service');
    return n.state === 'STARTED' && n;
  });
  await loadDashboard(page, t.base);
  await selectNode(page, hb.id);
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });

  // Asked first; "no" changes nothing.
  await page.getByTestId('btn-cancel').click();
  await page.getByTestId('confirm-dialog').waitFor({ state: 'visible' });
  await page.getByTestId('confirm-no').click();
  await page.getByTestId('confirm-dialog').waitFor({ state: 'hidden' });
  assert(posts.length === 0, `confirm-no sent nothing, got ${posts.join(', ')}`);
  assert((await apiGet(t.base, `/api/v1/nodes/${hb.id}`)).state === 'STARTED', 'heartbeat still STARTED after confirm-no');

  // "ok" cancels.
  await page.getByTestId('btn-cancel').click();
  await page.getByTestId('confirm-dialog').waitFor({ state: 'visible' });
  await page.getByTestId('confirm-ok').click();
  const result = await waitForText(page.getByTestId('action-result'), /\b202\b/);
  log(`action-result: ${JSON.stringify(result.trim())}`);
  assert(posts.some((u) => u.endsWith(`/api/v1/nodes/${hb.id}/cancel`)), `the UI posted /api/v1/nodes/${hb.id}/cancel, got ${posts.join(', ')}`);
  const n = await waitUntil('heartbeat FINISHED in the API', async () => {
    const x = await apiGet(t.base, `/api/v1/nodes/${hb.id}`);
    return x.state === 'FINISHED' && x;
  });
  assert(n.outcome === 'CANCELLED', `the API says heartbeat is CANCELLED, not ${n.outcome}`);
  await waitUntil('row CANCELLED', async () => await rowById(page, hb.id).getAttribute('data-outcome') === 'CANCELLED');
  await waitForText(page.getByTestId('detail-outcome'), /CANCELLED/);

  // Once finished, a second cancel is refused with 409 and the UI says so.
  await page.getByTestId('btn-cancel').click().catch(() => {});
  if (await page.getByTestId('confirm-dialog').isVisible()) {
    await page.getByTestId('confirm-ok').click();
    const again = await waitForText(page.getByTestId('action-result'), /\b409\b/);
    log(`second cancel: ${JSON.stringify(again.trim())}`);
  } else {
    log('the cancel button is disabled on a finished node');
  }
});
