// With a token configured (admin.token), reads need none and the page loads;
// the first POST gets 401, the token dialog asks, and with the token saved the
// action goes through. The token is kept in sessionStorage ("arbor.token"),
// never in localStorage. A wrong stored token gets 403 and the dialog again.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, assert, log, loadDashboard, selectNode, findNode, apiGet, waitUntil, waitForText } from './lib.mjs';

const TOKEN = 'web-test-token-3f9c';

await test('web_token_prompt_when_auth_on', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arbor-web-token-'));
  try {
    const config = path.join(dir, 'arbor.json');
    fs.writeFileSync(config, JSON.stringify({
      admin: { bind: '127.0.0.1', port: 0, token: TOKEN },
      shutdown_timeout_ms: 3000,
      tree: [{ service: 'sleeper', argv: ['/bin/sleep', '3600'] }],
    }));
    await t.arbor(['run', config, '--port', '0']);
    const { page, context } = await t.page();
    const svc = await waitUntil('sleeper STARTED', async () => {
      const n = await findNode(t.base, 'sleeper', 'service');
      return n.state === 'STARTED' && n;
    });
    await loadDashboard(page, t.base);
    await selectNode(page, svc.id);
    const statuses = [];
    page.on('response', (r) => { if (r.request().method() === 'POST') statuses.push(r.status()); });

    await page.getByTestId('btn-restart').click();
    await page.getByTestId('confirm-dialog').waitFor({ state: 'visible' });
    await page.getByTestId('confirm-ok').click();
    // The server says 401; the page asks for the token.
    await page.getByTestId('token-dialog').waitFor({ state: 'visible' });
    assert(statuses.includes(401), `the first POST got 401, statuses: ${statuses}`);
    await page.getByTestId('token-input').fill(TOKEN);
    await page.getByTestId('token-save').click();
    const result = await waitForText(page.getByTestId('action-result'), /\b202\b/);
    log(`action-result: ${JSON.stringify(result.trim())}; POST statuses ${statuses.join(', ')}`);
    await waitUntil('restarts 1 in the API', async () => (await apiGet(t.base, `/api/v1/nodes/${svc.id}`)).restarts === 1);

    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('arbor.token'),
      local: Object.keys(localStorage).map((k) => [k, localStorage.getItem(k)]),
    }));
    assert(stored.session === TOKEN, `sessionStorage "arbor.token" holds the token, got ${JSON.stringify(stored.session)}`);
    assert(!stored.local.some(([, v]) => (v || '').includes(TOKEN)), `localStorage never holds the token: ${JSON.stringify(stored.local)}`);
    assert(!(await context.cookies()).some((c) => c.value.includes(TOKEN)), 'no cookie holds the token');

    // The saved token serves the next action without asking again.
    const before = statuses.length;
    await page.getByTestId('btn-restart').click();
    await page.getByTestId('confirm-dialog').waitFor({ state: 'visible' });
    await page.getByTestId('confirm-ok').click();
    await waitUntil('the second restart in the API', async () => (await apiGet(t.base, `/api/v1/nodes/${svc.id}`)).restarts === 2);
    assert(!statuses.slice(before).includes(401), `no 401 with the saved token: ${statuses.slice(before)}`);
    assert(!(await page.getByTestId('token-dialog').isVisible()), 'the token dialog stays closed');

    // A stored token the server refuses (it changed its token): 403, and the
    // page asks again instead of failing the action.
    await page.evaluate(() => sessionStorage.setItem('arbor.token', 'not-the-token'));
    const before403 = statuses.length;
    await page.getByTestId('btn-restart').click();
    await page.getByTestId('confirm-dialog').waitFor({ state: 'visible' });
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('token-dialog').waitFor({ state: 'visible' });
    assert(statuses.slice(before403).includes(403), `a wrong stored token got 403: ${statuses.slice(before403)}`);
    await page.getByTestId('token-input').fill(TOKEN);
    await page.getByTestId('token-save').click();
    await waitUntil('the third restart in the API', async () => (await apiGet(t.base, `/api/v1/nodes/${svc.id}`)).restarts === 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
