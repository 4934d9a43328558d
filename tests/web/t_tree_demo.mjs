// The tree shows the demo's services (cmd/demo.h): a row each, kind service,
// with the state the API reports; the supervisors demo and net as supervisors.
import { test, assert, log, loadDashboard, rowById, rowByName, showRow, treeNodes, waitUntil } from './lib.mjs';

const SERVICES = ['db-sync', 'heartbeat', 'peer-manager', 'peer-client', 'retry', 'breaker', 'crasher'];

await test('web_tree_shows_demo_services', async (t) => {
  await t.arbor();
  // Tall enough that every demo row is on screen (the tree renders what is visible).
  const { page } = await t.page({ width: 1280, height: 2000 });
  await loadDashboard(page, t.base);
  const nodes = await waitUntil('every demo service in the API', async () => {
    const all = await treeNodes(t.base);
    return SERVICES.every((n) => all.some((x) => x.name === n && x.kind === 'service')) && all;
  });
  for (const name of SERVICES) {
    const n = nodes.find((x) => x.name === name && x.kind === 'service');
    const row = rowById(page, n.id);
    const onScreen = await row.waitFor({ state: 'attached', timeout: 3000 }).then(() => true, () => false);
    if (!onScreen) {
      log(`${name}: row ${n.id} not on the first screen; selected to bring it into view`);
      await showRow(page, n.id);
    }
    assert(await row.getAttribute('data-kind') === 'service', `${name}'s row has data-kind=service`);
    const shown = (await row.getByTestId('row-name').textContent()).trim();
    assert(shown === name, `row ${n.id} shows the name ${name}, not ${JSON.stringify(shown)}`);
    await row.getByTestId('row-state').waitFor({ state: 'attached' });
    await row.getByTestId('row-restarts').waitFor({ state: 'attached' });
    assert(await rowByName(page, name).count() >= 1, `a row named ${name}`);
    log(`${name}: row ${n.id} data-state=${await row.getAttribute('data-state')}`);
  }
  for (const name of ['demo', 'net']) {
    const n = nodes.find((x) => x.name === name && x.kind === 'supervisor');
    assert(n, `the API has the supervisor ${name}`);
    await showRow(page, n.id);
    assert(await rowById(page, n.id).getAttribute('data-kind') === 'supervisor', `${name}'s row has data-kind=supervisor`);
  }
  // A long-running service shows STARTED, as the API says.
  const hb = nodes.find((x) => x.name === 'heartbeat');
  await waitUntil('heartbeat row STARTED', async () => await rowById(page, hb.id).getAttribute('data-state') === 'STARTED');

  // Search by name narrows the rows to the matches (and their ancestors).
  const search = page.getByTestId('search');
  await search.fill('peer-cl');
  await waitUntil('search hides heartbeat', async () => await rowById(page, hb.id).count() === 0 ||
    !(await rowById(page, hb.id).isVisible()));
  const pc = nodes.find((x) => x.name === 'peer-client');
  assert(await rowById(page, pc.id).isVisible(), 'search keeps peer-client visible');
  await search.fill('');
  await rowById(page, hb.id).waitFor({ state: 'visible' });
});
