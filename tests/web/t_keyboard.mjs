// Keyboard navigation (docs/dashboard.md, "Keyboard"): with the tree focused,
// Home goes to the first row, ↓ moves down a row, Enter opens the node under
// the cursor (its detail, and the #/node/<id> deep link), Escape closes it.
//
// Which row is "the third" is read from the screen (rows sorted by their top),
// not from DOM order: the tree reuses a pool of row elements as it scrolls.
import { test, assert, log, loadDashboard, waitUntil, waitForText } from './lib.mjs';

const rowsOnScreen = (page) => page.evaluate(() => [...document.querySelectorAll('[data-testid="tree-row"]')]
  .filter((r) => r.offsetParent !== null)
  .map((r) => ({ id: r.getAttribute('data-id'), top: r.getBoundingClientRect().top,
    name: (r.querySelector('[data-testid="row-name"]')?.textContent || '').trim() }))
  .sort((a, b) => a.top - b.top));

await test('web_keyboard_moves_and_opens', async (t) => {
  await t.arbor();
  const { page, errors } = await t.page();
  await loadDashboard(page, t.base);
  const rows = await waitUntil('three rows on screen', async () => { const r = await rowsOnScreen(page); return r.length >= 3 && r; });

  await page.getByTestId('tree').focus();
  await page.keyboard.press('Home');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  const want = rows[2];
  log(`Home, down, down, Enter: expecting ${want.name} (${want.id})`);
  await waitUntil(`the hash #/node/${want.id}`, () => page.evaluate((h) => location.hash === h, `#/node/${want.id}`), { timeoutMs: 5000 });
  await waitForText(page.getByTestId('detail-name'), new RegExp(`^\\s*${want.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`), 5000);

  await page.keyboard.press('Escape');
  await waitUntil('Escape closes the node (the hash names none)', () => page.evaluate(() => !/^#\/node\//.test(location.hash)), { timeoutMs: 5000 });
  assert(errors.length === 0, `no errors, got:\n  ${errors.join('\n  ')}`);
});
