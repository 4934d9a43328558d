// Screenshots of the main views, written to build/web-screenshots/ (ARBOR_SHOTS
// overrides) and their paths printed: the tree at 1280x800, the detail of a
// failed run with its error chain (dashboard.png: the README's picture), the
// timeline, dark mode and a 400 px wide screen. Each view is checked for what
// makes it usable: dark mode is dark, the narrow page does not scroll sideways.
// docs/dashboard.png, the README's picture, is a copy of dashboard.png from a
// run (cp build/web-screenshots/dashboard.png docs/ to refresh it).
import { test, assert, log, loadDashboard, selectNode, findNode, treeNodes, screenshot, waitUntil, waitForText } from './lib.mjs';

// Relative luminance of a CSS rgb()/rgba() colour, 0 (black) to 1 (white).
const luminance = (css) => {
  const [r, g, b] = (css.match(/[\d.]+/g) || [255, 255, 255]).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};

// The colour actually painted behind the page: the first non-transparent
// background of body, html.
const pageBackground = (page) => page.evaluate(() => {
  for (const el of [document.body, document.documentElement]) {
    const c = getComputedStyle(el).backgroundColor;
    if (c && !/rgba\(0, 0, 0, 0\)|transparent/.test(c)) return c;
  }
  return 'rgb(255, 255, 255)';
});

await test('web_screenshots_of_main_views', async (t) => {
  await t.arbor();
  const crasher = await waitUntil('the crasher service', () => findNode(t.base, 'crasher', 'service'));
  const failed = await waitUntil('a failed crasher run', async () => (await treeNodes(t.base))
    .find((n) => n.parent_id === crasher.id && n.outcome === 'FAILED' && n.error), { timeoutMs: 15000, everyMs: 200 });
  // A picture worth showing has a few failures in it (the demo's come every
  // second or two); without them within 15 s it is taken all the same.
  await waitUntil('three failed runs', async () => (await treeNodes(t.base)).filter((n) => n.outcome === 'FAILED').length >= 3,
    { timeoutMs: 15000, everyMs: 250 }).catch(() => log('fewer than three failed runs after 15 s: the pictures show what there is'));

  const { page } = await t.page({ width: 1280, height: 800 });
  await loadDashboard(page, t.base);
  // The summary is painted on a 1 s tick: until its first, uptime reads "–" and
  // the failures of the last minute 0. The pictures show it filled in.
  await waitForText(page.getByTestId('uptime'), /\d/);
  await waitForText(page.getByTestId('failures-1m'), /[1-9]/);
  await screenshot(page, 'tree');

  await selectNode(page, failed.id);
  await page.getByTestId('error-link').first().waitFor({ state: 'visible' });
  await screenshot(page, 'detail');
  await screenshot(page, 'dashboard');

  const timeline = page.getByTestId('timeline');
  await timeline.scrollIntoViewIfNeeded();
  await page.getByTestId('timeline-bar').first().waitFor({ state: 'visible', timeout: 15000 });
  await screenshot(page, 'timeline');

  const light = luminance(await pageBackground(page));
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.evaluate(() => window.scrollTo(0, 0));
  await waitUntil('a dark background', async () => luminance(await pageBackground(page)) < 0.2, { timeoutMs: 3000 });
  const dark = luminance(await pageBackground(page));
  log(`background luminance: light ${light.toFixed(3)}, dark ${dark.toFixed(3)}`);
  assert(light > 0.5, `the light theme is light (luminance ${light.toFixed(3)})`);
  await screenshot(page, 'dark');

  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 400, height: 800 });
  await page.getByTestId('tree-row').first().waitFor({ state: 'visible' });
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  log(`400 px: page scrollWidth ${widths.scroll}, clientWidth ${widths.client}`);
  await screenshot(page, 'narrow');
  assert(widths.scroll <= widths.client + 1, `no sideways scrolling at 400 px (scrollWidth ${widths.scroll} > ${widths.client})`);
});
