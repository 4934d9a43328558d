// The detail panel shows the error chain of a failed run: one error-link per
// error (the failure, then each cause), each with the code's name, the message
// and file:line where the error has a place in the source.
//
// Failed runs of the demo: a crasher incarnation (EEXIT: "exited with status
// 3", no source place), the crasher service, whose restart history keeps its
// runs' chains, and, when the retry service gives up within the test's time
// (at random, about every 15 s), its run: two links ("gave up after 5 tries",
// with its file:line, caused by the last try's error). Beside the chains: the
// crasher's log tail and resource usage, and a sleeping fiber's wait site.
//
// The panel's text is checked too for what a rendering slip shows instead of
// a value: "undefined", "NaN", "[object Object]", a function's source.
import { test, assert, log, loadDashboard, selectNode, findNode, apiGet, treeNodes, waitUntil, waitForText } from './lib.mjs';

// The errors of a chain in the order the API nests them: each, then its
// errors[] (an error group's members) and its cause.
function flatten(e, out = []) {
  if (!e) return out;
  out.push(e);
  for (const x of e.errors || []) flatten(x, out);
  flatten(e.cause, out);
  return out;
}

async function checkChain(detail, errs, where) {
  const links = detail.getByTestId('error-chain').first().getByTestId('error-link');
  await waitUntil(`${errs.length} error-link(s) in ${where}`, async () => await links.count() >= errs.length);
  const texts = await links.allTextContents();
  log(`${where}: ${texts.length} error-link(s): ${texts.map((x) => JSON.stringify(x.replace(/\s+/g, ' ').trim())).join(', ')}`);
  for (const e of errs) {
    const hit = texts.find((x) => x.includes(e.name) && x.includes(e.message.slice(0, 60)));
    assert(hit, `${where}: an error-link with ${e.name} and "${e.message}"`);
    if (e.file) assert(hit.includes(`${e.file.split('/').pop()}:${e.line}`), `${where}: ${e.name}'s link shows ${e.file}:${e.line}`);
  }
}

const SLIPS = /\bundefined\b|\bNaN\b|\[object \w+\]|\[native code\]|=>|function\s*\w*\(/;

async function checkNoSlips(page, where) {
  const text = (await page.getByTestId('detail').first().innerText()).replace(/\s+/g, ' ');
  const m = SLIPS.exec(text);
  assert(!m, `${where}: the detail panel shows no rendering slip, got ${JSON.stringify(m?.[0])} in ...${JSON.stringify(text.slice(Math.max(0, (m?.index ?? 0) - 60), (m?.index ?? 0) + 60))}...`);
}

await test('web_detail_shows_error_chain', async (t) => {
  await t.arbor();
  const { page } = await t.page();
  const crasher = await waitUntil('the crasher service', () => findNode(t.base, 'crasher', 'service'));
  // Wait until the crasher has failed at least once (every 1-4 s).
  const failed = await waitUntil('a failed crasher incarnation', async () => (await treeNodes(t.base))
    .find((n) => n.parent_id === crasher.id && n.outcome === 'FAILED' && n.error), { timeoutMs: 15000, everyMs: 200 });
  const node = await apiGet(t.base, `/api/v1/nodes/${failed.id}`);
  const errs = flatten(node.error);
  assert(errs.length >= 1 && errs[0].name === 'EEXIT', `the incarnation failed with EEXIT, got ${JSON.stringify(node.error)}`);

  // Deep link straight to the failed run.
  await loadDashboard(page, t.base, `#/node/${failed.id}`);
  const detail = page.getByTestId('detail');
  await selectNode(page, failed.id);
  await waitUntil('detail-outcome FAILED', async () => /FAILED/.test(await page.getByTestId('detail-outcome').textContent()));
  await checkChain(detail, errs, `node ${failed.id}`);
  await checkNoSlips(page, `node ${failed.id}`);

  // The service: its history keeps the failed runs, newest first, with chains.
  const svc = await waitUntil('crasher history', async () => {
    const s = await apiGet(t.base, `/api/v1/nodes/${crasher.id}`);
    return s.history?.length >= 1 && s;
  });
  await selectNode(page, crasher.id);
  assert(new URL(page.url()).hash === `#/node/${crasher.id}`, `selecting updates the hash, got ${page.url()}`);
  const entries = detail.getByTestId('history-entry');
  await waitUntil('history entries', async () => await entries.count() >= 1);
  const first = entries.first();
  const text = await first.textContent();
  const h0 = flatten(svc.history[0].error);
  log(`history: ${await entries.count()} entr(ies); first: ${JSON.stringify(text.replace(/\s+/g, ' ').trim().slice(0, 200))}`);
  assert(h0.length === 0 || text.includes(h0[0].name), `the newest history entry shows ${h0[0]?.name}`);
  assert(await first.getByTestId('error-link').count() >= 1, 'a history entry renders its chain as error-link(s)');
  await checkNoSlips(page, `service ${crasher.id}`);

  // The process service's log tail has its runs' output (the crasher's stderr),
  // and a sleeping fiber's wait site names its call and place in the source.
  await waitForText(detail.getByTestId('log-tail'), /fatal: simulated crash/);
  // Its resource figures while a run is up (each run lasts 1-4 s; the panel
  // refreshes every 2 s), or "no program running" between runs.
  const usage = await waitForText(detail.getByTestId('usage'), /\d+ process(es)?, \d+ threads? · CPU [\d.]+ s, [\d.]+ % · [\d.]+ (MiB|KiB|B) resident · \d+ fds?/, 20000);
  log(`usage of the crasher: ${JSON.stringify(usage.trim())}`);
  const hb1 = await findNode(t.base, 'heartbeat#1');
  await selectNode(page, hb1.id);
  const wait = await waitForText(detail.getByTestId('wait-site'), /heartbeat\.c:\d+/);
  log(`wait-site of ${hb1.name}: ${JSON.stringify(wait.replace(/\s+/g, ' ').trim())}`);
  await checkNoSlips(page, `node ${hb1.id}`);

  // A chain of two with a source place: the retry service's run that gave up.
  const retry = await findNode(t.base, 'retry', 'service');
  const gaveUp = await waitUntil('a retry run that gave up', async () => (await treeNodes(t.base))
    .find((n) => n.parent_id === retry.id && n.outcome === 'FAILED' && n.error?.cause), { timeoutMs: 25000, everyMs: 250 })
    .catch(() => null);
  if (!gaveUp) {
    log('retry did not give up within 25 s (it does at random): the two-link chain was not checked this time');
    return;
  }
  const chain = flatten((await apiGet(t.base, `/api/v1/nodes/${gaveUp.id}`)).error);
  assert(chain.length >= 2 && chain[0].file, `retry's chain has a cause and a file, got ${JSON.stringify(chain)}`);
  await selectNode(page, gaveUp.id);
  await checkChain(detail, chain, `node ${gaveUp.id}`);
  await checkNoSlips(page, `node ${gaveUp.id}`);
});
