// Search and filters: the search box (any part of a name, any case), the state
// filter (here an outcome: FAILED) and the kind filter each narrow the tree to
// the matching nodes, shown with their ancestors (docs/dashboard.md: those that
// do not match carry data-match="false"); "/" puts the keyboard in the search.
//
// Options are picked by their text, not their values: the contract names the
// selects, not what their options are called inside.
import { test, assert, log, loadDashboard, findNode, treeNodes, waitUntil } from './lib.mjs';

// The rows that match (not the ancestors kept for context), as the DOM has them.
const matchingRows = (page) => page.evaluate(() => [...document.querySelectorAll('[data-testid="tree-row"]')]
  .filter((r) => r.getAttribute('data-match') !== 'false' && r.offsetParent !== null)
  .map((r) => ({
    id: r.getAttribute('data-id'), kind: r.getAttribute('data-kind'), outcome: r.getAttribute('data-outcome'),
    name: (r.querySelector('[data-testid="row-name"]')?.textContent || '').trim(),
  })));

async function pickOption(page, testid, re) {
  const sel = page.getByTestId(testid);
  const label = (await sel.locator('option').allTextContents()).find((x) => re.test(x));
  assert(label, `${testid} has an option matching ${re}`);
  await sel.selectOption({ label });
  return label;
}

async function expectRows(page, what, pred, minimum = 1) {
  let last = [];
  await waitUntil(what, async () => {
    last = await matchingRows(page);
    return last.length >= minimum && last.every(pred);
  }, { timeoutMs: 5000 }).catch((e) => {
    throw new Error(`${e.message}; matching rows: ${JSON.stringify(last.slice(0, 12))}`);
  });
  log(`${what}: ${last.length} row(s): ${last.map((r) => r.name).join(', ')}`);
  return last;
}

await test('web_search_and_filters_narrow_the_tree', async (t) => {
  await t.arbor();
  const { page, errors } = await t.page({ width: 1280, height: 1200 });
  const crasher = await waitUntil('the crasher service', () => findNode(t.base, 'crasher', 'service'));
  await waitUntil('a failed run', async () => (await treeNodes(t.base)).some((n) => n.outcome === 'FAILED'),
    { timeoutMs: 15000, everyMs: 200 });
  await loadDashboard(page, t.base);
  const search = page.getByTestId('search');

  // "/" from the tree puts the keyboard in the search box.
  await page.getByTestId('tree').click();
  await page.keyboard.press('/');
  await waitUntil('the search box focused by "/"', () => search.evaluate((el) => el === document.activeElement));

  await page.keyboard.type('CRASH');
  const hits = await expectRows(page, 'search "CRASH"', (r) => /crash/i.test(r.name));
  assert(hits.some((r) => r.id === String(crasher.id)), 'the crasher service is among the hits');
  await search.fill('');

  const failedLabel = await pickOption(page, 'filter-state', /FAILED/);
  await expectRows(page, `state filter "${failedLabel}"`, (r) => r.outcome === 'FAILED');
  await pickOption(page, 'filter-state', /^\s*any/i);

  const kindLabel = await pickOption(page, 'filter-kind', /^\s*service\s*$/i);
  const services = await expectRows(page, `kind filter "${kindLabel}"`, (r) => r.kind === 'service', 7);
  for (const name of ['heartbeat', 'db-sync', 'crasher'])
    assert(services.some((r) => r.name === name), `the service filter shows ${name}`);
  await pickOption(page, 'filter-kind', /^\s*any/i);

  // Everything back: more rows than services alone.
  await waitUntil('the whole tree back', async () => (await matchingRows(page)).some((r) => r.kind !== 'service'));
  assert(errors.length === 0, `no errors, got:\n  ${errors.join('\n  ')}`);
});
