// The dashboard loads with no console error, no uncaught exception, no failed
// request and no response >= 400 (as ../shared/validators/screenshot.mjs checks),
// with every contract piece in place: the icon, the CSP, the summary, the tree.
import { test, assert, log, loadDashboard, waitForText, waitUntil } from './lib.mjs';

await test('web_load_no_errors', async (t) => {
  await t.arbor();
  const { page, errors } = await t.page();
  // Requests in flight, the event stream aside (it stays open by design).
  const pending = new Set();
  let lastChange = Date.now();
  const track = (add) => (r) => {
    if (r.url().includes('/api/v1/events')) return;
    if (add) pending.add(r); else pending.delete(r);
    lastChange = Date.now();
  };
  page.on('request', track(true));
  page.on('requestfinished', track(false));
  page.on('requestfailed', track(false));
  const resp = await loadDashboard(page, t.base);
  const csp = resp.headers()['content-security-policy'] || '';
  log(`content-security-policy: ${csp}`);
  assert(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp), `GET / has the strict CSP, not ${JSON.stringify(csp)}`);

  // The icon is ours (so the browser never asks for a missing /favicon.ico).
  const icon = await page.locator('link[rel~="icon"]').getAttribute('href');
  assert(icon === '/ui/favicon.svg', `the icon link is /ui/favicon.svg, not ${icon}`);
  const fav = await page.request.get(`${t.base}/ui/favicon.svg`);
  assert(fav.status() === 200 && /svg/.test(fav.headers()['content-type'] || ''), `/ui/favicon.svg: ${fav.status()} ${fav.headers()['content-type']}`);

  // The summary is filled in from the server: every state has a count.
  for (const s of ['CREATED', 'STARTING', 'STARTED', 'STOPPING', 'STOPPED', 'FINISHED'])
    await waitForText(page.getByTestId(`count-${s}`), /\d/);
  await waitForText(page.getByTestId('count-STARTED'), /[1-9]/);

  // Give late work the time to fail: the uptime is filled in from the tree, and
  // the page has had no request in flight (but the stream) for half a second.
  await waitForText(page.getByTestId('uptime'), /\d/);
  await waitForText(page.getByTestId('events-rate'), /\d/);
  await waitUntil('no request in flight for 500 ms', () => pending.size === 0 && Date.now() - lastChange >= 500);
  log(`rows: ${await page.getByTestId('tree-row').count()}`);
  assert(errors.length === 0, `no errors while loading, got:\n  ${errors.join('\n  ')}`);
});
