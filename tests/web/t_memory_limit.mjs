// A process service's memory limit in the detail panel: the "memory limit" row
// (data-testid="memory-limit", from service.memory_limit) gives max_memory and,
// once the program has been read, its memory now; a service without a limit has
// no such row.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, log, loadDashboard, selectNode, findNode, waitUntil, waitForText } from './lib.mjs';

await test('web_detail_shows_the_memory_limit', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arbor-web-memlimit-'));
  try {
    const config = path.join(dir, 'arbor.json');
    fs.writeFileSync(config, JSON.stringify({
      admin: { bind: '127.0.0.1', port: 0 },
      shutdown_timeout_ms: 3000,
      tree: [{ service: 'api', argv: ['/bin/sleep', '3600'], max_memory: '512M', max_memory_for_ms: 2000 },
             { service: 'plain', argv: ['/bin/sleep', '3600'] }],
    }));
    await t.arbor(['run', config, '--port', '0']);
    const { page } = await t.page();
    const node = await waitUntil('api STARTED', async () => {
      const n = await findNode(t.base, 'api', 'service');
      return n && n.state === 'STARTED' && n;
    });
    await loadDashboard(page, t.base);
    await selectNode(page, node.id);
    const text = await waitForText(page.getByTestId('memory-limit'),
      /^512\.0 MiB for 2000 ms · now [\d.]+ (MiB|KiB), 1 process, read every \d+ ms$/);
    log(`api's memory limit: ${JSON.stringify(text.trim())}`);
    const plain = await findNode(t.base, 'plain', 'service');
    await selectNode(page, plain.id);
    await waitUntil('plain\'s panel without a memory-limit row', async () => (await page.getByTestId('memory-limit').count()) === 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
