import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const [url, token, n] = process.argv.slice(2);
for (let i = 0; i < Number(n ?? 3); i++) {
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'fl-')), { executablePath: '/usr/bin/chromium', headless: true,
    viewport: { width: 1700, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-first-run'] });
  const page = ctx.pages()[0];
  const t0 = Date.now();
  await page.goto(`${url}/workbench#token=${token}`);
  await page.waitForSelector('#new-udf');
  await page.waitForFunction(() => window.__map?.loaded());
  const total = Date.now() - t0;
  const marks = await page.evaluate(() => { const n = performance.getEntriesByType('navigation')[0]; return { resp: n.responseEnd|0, dcl: n.domContentLoadedEventEnd|0, ...Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name.replace('tf:', ''), m.startTime|0])), now: performance.now()|0,
    res: performance.getEntriesByType('resource').filter(e => /assets|basemap/.test(e.name)).map(e => `${e.name.split('/').pop().slice(0, 12)}@${e.startTime|0}-${e.responseEnd|0}`).join(' ') }; });
  console.log(total, JSON.stringify(marks));
  await ctx.close();
}
