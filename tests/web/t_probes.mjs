// Health probes in the detail panel: a service with a readiness probe that
// fails (an exec probe whose file is missing) says "not ready" with its
// failures in a row and last error, and "ready" once the probe passes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, assert, log, loadDashboard, selectNode, findNode, waitUntil, waitForText } from './lib.mjs';

await test('web_detail_shows_probes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arbor-web-probes-'));
  try {
    const config = path.join(dir, 'arbor.json');
    const ok = path.join(dir, 'ok');
    fs.writeFileSync(config, JSON.stringify({
      admin: { bind: '127.0.0.1', port: 0 },
      shutdown_timeout_ms: 3000,
      tree: [
        { service: 'api', argv: ['/bin/sleep', '3600'],
          readiness: { exec: ['test', '-e', ok], interval_ms: 50, failure_threshold: 2 } },
      ],
    }));
    await t.arbor(['run', config, '--port', '0']);
    const { page } = await t.page();
    const api = await waitUntil('api STARTING', async () => {
      const n = await findNode(t.base, 'api', 'service');
      return n && n.state === 'STARTING' && n;
    });
    await loadDashboard(page, t.base);
    await selectNode(page, api.id);
    const text = await waitForText(page.getByTestId('probe-readiness'),
      /^exec test -e .* every 50 ms · not ready · \d+ failures? in a row \(of 2\) · 0 passed, \d+ failed · last error: exec test: exited with status 1$/);
    log(`not ready: ${JSON.stringify(text)}`);
    fs.writeFileSync(ok, '');
    const ready = await waitForText(page.getByTestId('probe-readiness'), /· ready ·/);
    log(`ready: ${JSON.stringify(ready)}`);
    await waitForText(page.getByTestId('service-ready'), /^yes$/);
    assert((await page.getByTestId('probe-liveness').count()) === 0, 'no liveness probe row');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
