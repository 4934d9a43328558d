// Reconnect after the server restarts: with the daemon gone, conn-status says
// "reconnecting"; with a new one on the same port, it says "live" again and the
// tree is reloaded from the new server (a service cancelled on the old one is
// running again).
import { test, assert, log, loadDashboard, findNode, apiPost, showRow, stopArbor, waitUntil, waitForText, LIVE, RECONNECTING } from './lib.mjs';

await test('web_reconnects_after_server_restart', async (t) => {
  const first = await t.arbor();
  const { page } = await t.page({ width: 1280, height: 1600 });
  const retry = await waitUntil('retry STARTED', async () => {
    const n = await findNode(t.base, 'retry', 'service');
    return n.state === 'STARTED' && n;
  });
  await loadDashboard(page, t.base);
  const r = await apiPost(t.base, `/api/v1/nodes/${retry.id}/cancel`);
  assert(r.status === 202, `cancel retry: ${r.status}`);
  await waitUntil('retry CANCELLED in the row', async () => await (await showRow(page, retry.id)).getAttribute('data-outcome') === 'CANCELLED');

  const status = page.getByTestId('conn-status');
  const exit = await stopArbor(first);
  log(`first daemon exited (${exit.code ?? exit.signal})`);
  await waitForText(status, RECONNECTING, 15000);
  log(`conn-status: ${JSON.stringify((await status.textContent()).trim())}`);

  // The same port again (it was just released; retry while the kernel lets go).
  const second = await waitUntil(`a new daemon on port ${first.port}`,
    () => t.arbor(['demo', '--port', String(first.port)]), { timeoutMs: 15000, everyMs: 300 });
  assert(second.port === first.port, `same port ${first.port}`);
  await waitForText(status, LIVE, 20000);
  log('conn-status: live again');
  const again = await waitUntil('retry STARTED on the new server', async () => {
    const n = await findNode(second.url, 'retry', 'service');
    return n.state === 'STARTED' && n;
  });
  await waitUntil('the tree reloaded: retry STARTED again', async () => {
    const row = await showRow(page, again.id);
    return await row.getAttribute('data-state') === 'STARTED' &&
      await row.getAttribute('data-outcome') !== 'CANCELLED';
  }, { timeoutMs: 15000 });
});
