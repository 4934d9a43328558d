// Restart from the UI keeps the node's id and raises its restart count, in the
// API and in the row.
import { test, assert, log, loadDashboard, selectNode, findNode, apiGet, rowById, showRow, waitUntil, waitForText } from './lib.mjs';

await test('web_restart_keeps_id_raises_count', async (t) => {
  await t.arbor();
  const { page } = await t.page();
  const hb = await waitUntil('heartbeat STARTED', async () => {
    const n = await findNode(t.base, 'heartbeat', 'service');
    return n.state === 'STARTED' && n;
  });
  await loadDashboard(page, t.base);
  await selectNode(page, hb.id);
  const before = (await apiGet(t.base, `/api/v1/nodes/${hb.id}`)).restarts;
  // (A count of 0 may be shown as nothing.)
  await (await showRow(page, hb.id)).getByTestId('row-restarts').waitFor({ state: 'attached' });
  if (before > 0) await waitForText(rowById(page, hb.id).getByTestId('row-restarts'), new RegExp(`(^|\\D)${before}(\\D|$)`));

  await page.getByTestId('btn-restart').click();
  await page.getByTestId('confirm-dialog').waitFor({ state: 'visible' });
  await page.getByTestId('confirm-ok').click();
  const result = await waitForText(page.getByTestId('action-result'), /\b202\b/);
  log(`action-result: ${JSON.stringify(result.trim())}`);

  const after = await waitUntil('restarts + 1 in the API', async () => {
    const x = await apiGet(t.base, `/api/v1/nodes/${hb.id}`);
    return x.restarts === before + 1 && x;
  });
  assert(after.id === hb.id && after.name === 'heartbeat', 'the same id is still heartbeat');
  await waitUntil('heartbeat STARTED again', async () => (await apiGet(t.base, `/api/v1/nodes/${hb.id}`)).state === 'STARTED');
  await waitForText(rowById(page, hb.id).getByTestId('row-restarts'), new RegExp(`(^|\\D)${before + 1}(\\D|$)`));
  await waitForText(page.getByTestId('detail-restarts'), new RegExp(`(^|\\D)${before + 1}(\\D|$)`));
  assert(await page.getByTestId('tree-row').filter({ has: page.getByTestId('row-name').getByText('heartbeat', { exact: true }) }).count() === 1,
    'still one heartbeat row (same id, not a new node)');
  log(`heartbeat ${hb.id}: restarts ${before} -> ${before + 1}`);
});
