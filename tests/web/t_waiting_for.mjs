// Start dependencies in the dashboard: a service that requires another one that
// is still STARTING (its min_uptime_ms not yet reached) has not started; its
// tree row says "waiting for db" (row-waiting, from the tree's waiting_for) and
// its detail panel "db: STARTING" (waiting-for, from service.waiting_for); db's
// own row and panel have neither.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, assert, log, loadDashboard, selectNode, findNode, waitUntil, waitForText, showRow, rowById } from './lib.mjs';

await test('web_detail_shows_what_a_service_waits_for', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arbor-web-waiting-'));
  try {
    const config = path.join(dir, 'arbor.json');
    fs.writeFileSync(config, JSON.stringify({
      admin: { bind: '127.0.0.1', port: 0 },
      shutdown_timeout_ms: 3000,
      tree: [
        { service: 'api', argv: ['/bin/sleep', '3600'], requires: ['db'] },
        { service: 'db', argv: ['/bin/sleep', '3600'], min_uptime_ms: 3600000 },
      ],
    }));
    await t.arbor(['run', config, '--port', '0']);
    const { page } = await t.page();
    const db = await waitUntil('db STARTING', async () => {
      const n = await findNode(t.base, 'db', 'service');
      return n && n.state === 'STARTING' && n;
    });
    const api = await findNode(t.base, 'api', 'service');
    assert(api.state === 'CREATED', `api has not started while db is STARTING: ${api.state}`);
    await loadDashboard(page, t.base);
    await showRow(page, api.id);
    const rowText = await waitForText(rowById(page, api.id).getByTestId('row-waiting'), /^waiting for db$/);
    log(`api row: ${JSON.stringify(rowText)}`);
    await showRow(page, db.id);
    assert((await rowById(page, db.id).getByTestId('row-waiting').count()) === 0, 'db\'s row waits for nothing');
    await selectNode(page, api.id);
    const text = await waitForText(page.getByTestId('waiting-for'), /^db: STARTING \(#\d+\)$/);
    log(`api waiting-for: ${JSON.stringify(text.trim())}`);
    assert(text.includes(`#${db.id}`), `names db's id ${db.id}: ${text}`);
    await selectNode(page, db.id);
    await waitUntil('db\'s panel without a waiting-for row', async () => (await page.getByTestId('waiting-for').count()) === 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
