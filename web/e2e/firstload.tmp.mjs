import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const [url, token] = process.argv.slice(2);
for (let i = 0; i < 3; i++) {
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'fl-')), { executablePath: '/usr/bin/chromium', headless: true,
    viewport: { width: 1700, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-first-run'] });
  const page = ctx.pages()[0];
  const t0 = Date.now();
  await page.goto(`${url}/workbench#token=${token}`);
  const tDom = Date.now();
  await page.waitForSelector('#new-udf');
  const tApp = Date.now();
  await page.waitForFunction(() => window.__map?.loaded());
  const tMap = Date.now();
  const nav = await page.evaluate(() => JSON.stringify({ nav: performance.getEntriesByType('navigation').map(e => [e.responseEnd|0, e.domContentLoadedEventEnd|0, e.loadEventEnd|0]), res: performance.getEntriesByType('resource').map(e => [e.name.split('/').pop().slice(0,30), e.startTime|0, e.responseEnd|0, e.transferSize]) }));
  console.log({ goto: tDom - t0, app: tApp - t0, map: tMap - t0 }, nav);
  await ctx.close();
}
