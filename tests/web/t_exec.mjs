// A process service's execution settings in the detail panel: the "runs as" row
// (data-testid="exec", from service.exec) names the user it runs as (as root),
// its umask and its limits; a service without them has no such row.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, assert, log, loadDashboard, selectNode, findNode, waitUntil, waitForText } from './lib.mjs';

await test('web_detail_shows_how_a_service_runs', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arbor-web-exec-'));
  const root = process.getuid() === 0;
  try {
    const config = path.join(dir, 'arbor.json');
    const api = { service: 'api', argv: ['/bin/sleep', '3600'], umask: '0027',
                  rlimits: { nofile: { soft: 100, hard: 200 }, core: 0 } };
    if (root) api.user = 'nobody';   // only root may switch users
    fs.writeFileSync(config, JSON.stringify({
      admin: { bind: '127.0.0.1', port: 0 },
      shutdown_timeout_ms: 3000,
      tree: [api, { service: 'plain', argv: ['/bin/sleep', '3600'] }],
    }));
    await t.arbor(['run', config, '--port', '0']);
    const { page } = await t.page();
    const node = await waitUntil('api STARTED', async () => {
      const n = await findNode(t.base, 'api', 'service');
      return n && n.state === 'STARTED' && n;
    });
    await loadDashboard(page, t.base);
    await selectNode(page, node.id);
    const want = root ? /^user nobody \(uid \d+\) · gid \d+ · groups [\d, ]+ · umask 0027 · nofile 100\/200 · core 0$/
                      : /^umask 0027 · nofile 100\/200 · core 0$/;
    const text = await waitForText(page.getByTestId('exec'), want);
    log(`api runs as: ${JSON.stringify(text.trim())}`);
    const plain = await findNode(t.base, 'plain', 'service');
    await selectNode(page, plain.id);
    await waitUntil('plain\'s panel without a runs-as row', async () => (await page.getByTestId('exec').count()) === 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
