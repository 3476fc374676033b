// End-to-end test of the workbench in headless Chromium against a real terrafused (started
// by tests/workbench/test_workbench_e2e.py, which passes its address in the environment).
// Prints the performance figures and writes them to $E2E_FIGURES as JSON.
//
//   WORKBENCH_URL=http://127.0.0.1:PORT TF_TOKEN=... E2E_DATA=/tmp/x.geojson node e2e/workbench.e2e.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { gridDisk, latLngToCell } from 'h3-js';

const url = process.env.WORKBENCH_URL;
const token = process.env.TF_TOKEN;
const data = process.env.E2E_DATA;
assert(url && token && data, 'set WORKBENCH_URL, TF_TOKEN and E2E_DATA');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const figures = {};
const log = (...a) => console.log('[e2e]', ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const launch = (dir) => chromium.launchPersistentContext(dir, {
  executablePath,
  headless: true,
  viewport: { width: 1700, height: 1000 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
// Navigation start → app shown and the base map's load event, in the page (marks set by
// main.ts), in a just-started browser with an empty profile.
const loadedAt = (p) => p.evaluate(() => {
  const mark = (name) => performance.getEntriesByName(name).at(-1)?.startTime ?? NaN;
  return Math.round(Math.max(mark('tf:shown'), mark('tf:map-loaded')));
});
async function freshLoad() {
  const dir = mkdtempSync(join(tmpdir(), 'tf-chromium-'));
  const ctx = await launch(dir);
  try {
    const p = ctx.pages()[0] ?? (await ctx.newPage());
    await p.goto(`${url}/workbench#token=${token}`);
    await p.waitForFunction(() => performance.getEntriesByName('tf:map-loaded').length > 0, null, { timeout: 60000 });
    return await loadedAt(p);
  } finally {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
// The machine is shared: the first-load figure is the median of three fresh browsers.
const firstLoads = [await freshLoad(), await freshLoad()];

const userDataDir = mkdtempSync(join(tmpdir(), 'tf-chromium-'));
const context = await launch(userDataDir);
const page = context.pages()[0] ?? (await context.newPage());
const external = [];
page.on('request', (r) => { if (!r.url().startsWith(url) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) external.push(r.url()); });
page.on('pageerror', (e) => log('page error:', e.message));

async function setCode(code, pane = 'code') {
  if (pane !== 'code') await page.click(`#editor-tabs [data-tab="${pane}"]`);
  await page.click(`#pane-${pane} .cm-content`);
  await page.keyboard.press('Control+A');
  if (code) await page.keyboard.insertText(code);
  else await page.keyboard.press('Backspace');
  if (pane !== 'code') await page.click('#editor-tabs [data-tab="code"]');
}

/** Counts the map's pixels close to the vector fill (orange over the base map), or to `rgb`. */
async function orangePixels(rgb = null, png = null) {
  png ??= await page.locator('#map').screenshot();
  return page.evaluate(async ([b64, rgb]) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (rgb ? Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1]) + Math.abs(d[i + 2] - rgb[2]) < 40
              : d[i] > 200 && d[i + 1] > 110 && d[i + 1] < 200 && d[i + 2] < 140) n++;
    }
    return n;
  }, [png.toString('base64'), rgb]);
}

async function waitFor(fn, what, timeout = 30000) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(50);
  }
}

try {
  // 1. First load, signed in by the token in the URL fragment.
  const t0 = Date.now();
  await page.goto(`${url}/workbench#token=${token}`);
  await page.waitForSelector('#new-udf');
  await page.waitForFunction(() => window.__map?.loaded());
  // The polled figure also counts the test's polling of map.loaded(), which turns false
  // again while the first result's zoom loads new tiles.
  figures.first_load_polled_ms = Date.now() - t0;
  firstLoads.push(await loadedAt(page));
  figures.first_load_ms = median(firstLoads);
  assert(!page.url().includes('token='), 'the token is dropped from the address bar');
  // Again with the browser warm (assets revalidated by ETag): what a returning user sees.
  const t1 = Date.now();
  await page.reload();
  await page.waitForSelector('#new-udf');
  await page.waitForFunction(() => window.__map?.loaded());
  figures.reload_polled_ms = Date.now() - t1;
  figures.reload_ms = await loadedAt(page);
  log('first load', figures.first_load_ms, 'ms (median of', firstLoads.join(', '), 'ms); reload', figures.reload_ms, 'ms');

  // 2. New UDF: the quickstart reading a local GeoJSON, run on edit (no Run pressed).
  await page.click('#new-udf');
  await setCode(`@fused.udf
def udf():
    import geopandas as gpd
    DATASET = "${data}"
    gdf = gpd.read_file(DATASET)
    gdf = gdf[gdf['name'].isin(['California', 'Texas'])]
    print(gdf)
    return gdf
`);
  await page.waitForFunction(() => document.querySelector('#stdout-text')?.textContent.includes('Texas'), null, { timeout: 60000 });
  const stdout = await page.textContent('#stdout-text');
  assert(stdout.includes('California') && !stdout.includes('Nevada'), `stdout shows the filtered rows: ${stdout}`);
  await page.waitForTimeout(300);
  const drawn = await orangePixels();
  log('orange pixels with the layer:', drawn);
  assert(drawn > 2000, `the features are drawn on the map (${drawn} px)`);
  // Hiding the layer removes them: the pixels came from the UDF.
  await page.click('.layer.active input[type=checkbox]');
  await page.waitForTimeout(300);
  const hidden = await orangePixels();
  assert(hidden < drawn / 10, `hidden layer leaves the map (${hidden} px)`);
  await page.click('.layer.active input[type=checkbox]');

  // Table view and picking.
  await page.click('#results-tabs [data-tab="table"]');
  assert((await page.textContent('#result-table')).includes('Texas'));
  const box = await page.locator('#map').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForFunction(() => document.querySelector('#selected-text')?.textContent.includes('"properties"'));
  await page.keyboard.press('Escape');  // leaves the selection, as Fused's debug mode
  await page.waitForFunction(() => document.querySelector('#selected-text')?.textContent === 'Click a feature on the map.');
  log('picking shows the selected feature; Escape clears it');

  // A result over the large-result limit waits for "Draw it anyway" (limit lowered to 100 bytes).
  await page.evaluate(() => localStorage.setItem('terrafuse.largeResultBytes', '100'));
  await page.click('#results-tabs [data-tab="stdout"]');
  await setCode(`@fused.udf
def udf():
    import geopandas as gpd
    gdf = gpd.read_file("${data}")
    return gdf[gdf['name'].isin(['California', 'Texas'])]  # large now
`);
  await page.waitForFunction(() => [...document.querySelectorAll('#results-body button')].some((b) => b.textContent === 'Draw it anyway'), null, { timeout: 60000 });
  assert(/The result is large \(\d+ MB\)\./.test(await page.textContent('#results-body')), 'the large-result warning is shown');
  await page.waitForTimeout(300);
  const held = await orangePixels();
  assert(held < drawn / 10, `a large result is not drawn until asked (${held} px)`);
  await page.click('text=Draw it anyway');
  await waitFor(async () => (await orangePixels()) > 2000, 'the large result drawn after Draw it anyway');
  await page.evaluate(() => localStorage.removeItem('terrafuse.largeResultBytes'));
  log('a large result waits for Draw it anyway');

  // A UDF error shows its traceback.
  await setCode('@fused.udf\ndef udf():\n    print("before")\n    raise ValueError("boom")\n');
  await page.click('#results-tabs [data-tab="stdout"]');
  await page.waitForFunction(() => document.querySelector('#traceback')?.textContent.includes('boom'));
  assert((await page.textContent('#stdout-text')).includes('before'));

  // A raster with its bounds is drawn as an image (pure red here).
  await setCode(`@fused.udf
def udf():
    import numpy as np
    a = np.zeros((3, 32, 32), dtype="uint8")
    a[0] = 255
    return a, [-122.52, 37.70, -122.30, 37.83]
`);
  await waitFor(async () => (await orangePixels([255, 0, 0])) > 2000, 'the raster drawn in red');
  log('raster drawn at its bounds');

  // A table of H3 cells (no geometry) is drawn as hexagons.
  const cells = gridDisk(latLngToCell(37.765, -122.41, 7), 2);
  await setCode(`@fused.udf
def udf():
    import pandas as pd
    return pd.DataFrame({"hex": ${JSON.stringify(cells)}, "v": list(range(${cells.length}))})
`);
  await waitFor(async () => (await orangePixels()) > 2000, 'the hexagons drawn');
  log('H3 table drawn as hexagons');

  // The utils module tab is importable from the code.
  await setCode('def greet():\n    return "hello from utils"\n', 'utils');
  await setCode('@fused.udf\ndef udf():\n    from utils import greet\n    print(greet())\n    return None\n');
  await page.waitForFunction(() => document.querySelector('#stdout-text')?.textContent.includes('hello from utils'));

  // Alt+Shift+F formats the code with Black.
  await setCode("@fused.udf\ndef udf( a:int=1 ):\n    x = {'a':a}\n    return x\n");
  await page.keyboard.press('Alt+Shift+F');
  await waitFor(async () => (await page.textContent('#pane-code .cm-content')).includes('def udf(a: int = 1):'), 'the formatted code');
  log('Alt+Shift+F formatted the code');

  // Parameters panel from the signature; editing a value re-runs.
  await setCode(`@fused.udf
def udf(n: int = 2, label: str = "a"):
    import geopandas as gpd, shapely
    print("n =", n, label)
    return gpd.GeoDataFrame({"i": list(range(n))}, geometry=[shapely.box(-122.5 + i * 0.05, 37.70, -122.46 + i * 0.05, 37.85) for i in range(n)], crs=4326)
`);
  await page.waitForSelector('#params input[data-param="n"]');
  await page.fill('#params input[data-param="n"]', '4');
  await page.waitForFunction(() => document.querySelector('#stdout-text')?.textContent.includes('n = 4 a'));
  log('parameters panel re-runs with n = 4');

  // Visualize: a colorCategories config restyles the layer at once (no re-run).
  const runsBefore = await page.evaluate(() => window.__workbench.runs);
  await setCode(JSON.stringify({ vectorLayer: { '@@type': 'GeoJsonLayer', filled: true, pickable: true,
    getFillColor: { '@@function': 'colorCategories', attr: 'i', domain: [0, 1, 2, 3], colors: ['#0000ff', '#0000ff', '#0000ff', '#0000ff'] } } }), 'viz');
  await waitFor(async () => (await orangePixels([0, 0, 255])) > 2000, 'the layer restyled in blue');
  assert.equal(await page.evaluate(() => window.__workbench.runs), runsBefore, 'styling does not run the UDF');
  await setCode('', 'viz');
  log('Visualize restyles the layer');

  // 3. Edit → map updated, uncached (new code each time) and cached (the same code again).
  const trivial = (k) => `@fused.udf\ndef udf():\n    import geopandas as gpd, shapely\n    return gpd.GeoDataFrame({"k": [${k}]}, geometry=[shapely.box(-122.5, 37.7, -122.3, 37.85)], crs=4326)\n`;
  async function timedEdit(k) {
    const before = await page.evaluate(() => window.__workbench.runToDraw.length);
    const start = Date.now();
    await setCode(trivial(k));
    await waitFor(() => page.evaluate((n) => window.__workbench.runToDraw.length > n, before), 'the map update');
    return { total: Date.now() - start, run: await page.evaluate(() => window.__workbench.runToDraw.at(-1)),
      edit: await page.evaluate(() => window.__workbench.editToDraw.at(-1)),
      parts: await page.evaluate(() => window.__workbench.runParts.at(-1)) };
  }
  const uncached = [];
  const cached = [];
  const salt = Date.now() % 100000;
  for (let i = 0; i < 7; i++) uncached.push(await timedEdit(salt + i));
  for (let i = 0; i < 7; i++) cached.push(await timedEdit(salt + i));
  // Keystroke (the editor's change) → deck.gl frame drawn with the new result.
  figures.edit_to_map_uncached_p50_ms = Math.round(median(uncached.map((x) => x.edit)));
  figures.edit_to_map_cached_p50_ms = Math.round(median(cached.map((x) => x.edit)));
  // Run request sent → frame drawn; and the test's own input (click, select, type) included.
  figures.run_to_map_uncached_p50_ms = Math.round(median(uncached.map((x) => x.run)));
  figures.run_to_map_cached_p50_ms = Math.round(median(cached.map((x) => x.run)));
  figures.edit_to_map_uncached_p50_with_test_input_ms = Math.round(median(uncached.map((x) => x.total)));
  // Where the uncached time goes: the server's time, and the request + decode in the browser.
  figures.uncached_server_p50_ms = Math.round(median(uncached.map((x) => x.parts.server)));
  figures.uncached_fetch_p50_ms = Math.round(median(uncached.map((x) => x.parts.fetch)));
  log('edit → map p50: uncached', figures.edit_to_map_uncached_p50_ms, 'ms, cached', figures.edit_to_map_cached_p50_ms, 'ms');

  // Map controls (Fused's map bar): location search, zoom to layer, base maps, screenshot.
  const viewBefore = await page.evaluate(() => ({ center: window.__map.getCenter(), zoom: window.__map.getZoom() }));
  const boxDrawn = await orangePixels();
  assert(boxDrawn > 2000, `the trivial UDF's box is drawn (${boxDrawn} px)`);
  assert((await page.textContent('#map-center')).includes('37.'), 'the map center is shown');
  await page.fill('#map-search', '48.8584, 2.2945, 12');
  await page.press('#map-search', 'Enter');
  const paris = await page.evaluate(() => window.__map.getCenter());
  assert(Math.abs(paris.lat - 48.8584) < 1e-3 && Math.abs(paris.lng - 2.2945) < 1e-3, `search moved the map: ${JSON.stringify(paris)}`);
  await waitFor(async () => (await orangePixels()) < 100, 'the box out of view');
  await page.fill('#map-search', 'Paris');
  await page.press('#map-search', 'Enter');
  assert((await page.textContent('#map-search-message')).includes('no address geocoder'), 'an address is refused with a reason');
  await page.click('.layer.active button.zoom');
  await waitFor(async () => (await orangePixels()) > 2000, 'zoom to layer shows the box again');
  const light = await orangePixels([247, 246, 242]) + await orangePixels([215, 227, 236]);
  await page.selectOption('#basemap', 'dark');
  await waitFor(async () => (await orangePixels([59, 66, 73])) + (await orangePixels([28, 37, 48])) > light / 2, 'the dark base map');
  await page.selectOption('#basemap', 'blank');
  await waitFor(async () => (await orangePixels([255, 255, 255])) > light / 2, 'the blank base map');
  await page.selectOption('#basemap', 'light');
  await waitFor(async () => (await orangePixels([247, 246, 242])) + (await orangePixels([215, 227, 236])) > light / 2, 'the light base map again');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#screenshot')]);
  const shot = readFileSync(await download.path());
  assert(download.suggestedFilename().startsWith('map_37.') && shot.subarray(1, 4).toString() === 'PNG', download.suggestedFilename());
  const shotOrange = await orangePixels(null, shot);
  assert(shotOrange > 2000, `the screenshot holds the base map and the layer (${shotOrange} orange px)`);
  log('map bar: search by coordinates, zoom to layer, dark/blank/light base maps, screenshot');
  await page.evaluate((v) => window.__map.jumpTo(v), viewBefore);  // the tile figures below keep their viewport

  // 4. Tile mode: every tile runs the UDF with its bounds; panning loads more tiles.
  await setCode(`@fused.udf
def udf(bounds: fused.types.Bounds = None):
    import geopandas as gpd, shapely
    w, s, e, n = bounds
    dx, dy = (e - w) * 0.2, (n - s) * 0.2
    return gpd.GeoDataFrame({"w": [w]}, geometry=[shapely.box(w + dx, s + dy, e - dx, n - dy)], crs=4326)
`);
  // Through the command palette (Ctrl+K).
  await page.keyboard.press('Control+K');
  await page.fill('#palette input', 'mode: tile');
  await page.keyboard.press('Enter');
  assert.equal(await page.inputValue('#mode'), 'tile');
  await page.waitForFunction(() => document.querySelector('#run-status')?.textContent.includes('tiles'), null, { timeout: 60000 });
  const tilesCount = async () => page.evaluate(() => {
    const t = document.querySelector('#run-status')?.textContent ?? '';
    return Number(/^(\d+) tiles/.exec(t)?.[1] ?? 0);
  });
  await waitFor(async () => (await tilesCount()) >= 4, 'tiles', 60000);
  await page.waitForTimeout(1500);
  const firstTiles = await tilesCount();
  assert((await orangePixels()) > 2000, 'tiles are drawn');
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 - 500, box.y + box.height / 2 - 200, { steps: 8 });
  await page.mouse.up();
  await waitFor(async () => (await tilesCount()) > firstTiles, 'tiles for the panned viewport', 60000);
  log('tiles after pan:', firstTiles, '→', await tilesCount());
  // Frozen, a pan runs nothing.
  await page.check('#freeze');
  await page.waitForTimeout(500);
  const frozenCount = await tilesCount();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 600, box.y + box.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.waitForTimeout(1500);
  assert.equal(await tilesCount(), frozenCount, 'a frozen map requests no tiles');
  await page.uncheck('#freeze');
  await page.click('#results-tabs [data-tab="request"]');
  assert((await page.textContent('#request-text')).includes('"bounds"'), 'request details list the tile bounds');

  // About 20 tiles in view, all cached, fully drawn: grow the window until the viewport
  // holds 20 tiles (each size is loaded once first, so the timed loads are cache hits).
  const reload = async () => {
    const n = await page.evaluate(() => window.__workbench.tileViewport.length);
    await page.evaluate(() => window.__reloadTiles());
    await waitFor(() => page.evaluate((k) => window.__workbench.tileViewport.length > k, n), 'the viewport tiles', 60000);
    return page.evaluate(() => window.__workbench.tileViewport.at(-1));
  };
  for (const [width, height] of [[1700, 1000], [1900, 1100], [2100, 1200], [2300, 1300], [2600, 1400]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(300);
    if ((await reload()).tiles >= 20) break;
  }
  const draws = [];
  for (let i = 0; i < 5; i++) {
    draws.push(await reload());
  }
  await page.setViewportSize({ width: 1700, height: 1000 });
  figures.cached_viewport_tiles = draws[0].tiles;
  figures.cached_viewport_draw_p50_ms = Math.round(median(draws.map((d) => d.ms)));
  log(`cached viewport of ${figures.cached_viewport_tiles} tiles drawn in`, figures.cached_viewport_draw_p50_ms, 'ms (p50)');

  // 5. Save (Ctrl+S) and share: create a token and run the curl snippet.
  await page.fill('#udf-name', 'e2e_tiles');
  await page.click('#pane-code .cm-content');
  await page.keyboard.press('Control+S');
  await page.waitForFunction(() => document.querySelector('#run-status')?.textContent.includes('Saved'));
  await page.click('#share');
  await page.click('#create-token');
  await page.waitForSelector('#snippet');
  const curl = await page.textContent('#snippet');
  const shared = await page.textContent('#share-token');
  assert(curl.startsWith('curl -sL "') && curl.includes(shared), curl);
  const output = execFileSync('sh', ['-c', curl], { encoding: 'utf8' });
  assert(output.includes('"FeatureCollection"'), `the curl snippet answers GeoJSON: ${output.slice(0, 200)}`);
  for (const name of ['fused.run', 'DuckDB', 'deck.gl', 'MapLibre', 'Leaflet', 'QGIS', 'Google Sheets']) {
    await page.click(`#share-modal .tabs [data-tab="${name}"]`);
    assert((await page.textContent('#snippet')).includes(shared), name);
  }
  log('curl snippet ran:', output.length, 'bytes of GeoJSON');
  const link = await page.getAttribute('#share-link', 'href');
  await page.click('.modal-bg', { position: { x: 5, y: 5 } });

  // The read-only view of the shared link draws the tiles (MVT) without signing in.
  await page.goto(link);
  await page.waitForFunction(() => /^[1-9]\d* tiles/.test(document.querySelector('#shared-status')?.textContent ?? ''), null, { timeout: 60000 });
  await page.waitForTimeout(1000);
  const sharedPixels = await orangePixels();
  assert(sharedPixels > 2000, `the shared view draws the tiles (${sharedPixels} px)`);
  log('read-only shared view drew its MVT tiles');
  await page.goto(`${url}/workbench`);
  await page.waitForSelector('#new-udf');

  // 6. Tokens page lists the token; revoking it stops the link.
  await page.click('.nav a[href="/workbench/tokens"]');
  await page.waitForFunction((t) => document.querySelector('#tokens-list')?.textContent.includes(t), shared);
  await page.click('#tokens-list button');
  await page.waitForFunction((t) => !document.querySelector('#tokens-list')?.textContent.includes(t), shared);
  const revoked = execFileSync('sh', ['-c', `${curl.replace('curl -sL', 'curl -s -o /dev/null -w "%{http_code}"')}`], { encoding: 'utf8' });
  assert(revoked !== '200', `a revoked token no longer runs (${revoked})`);

  // 7. Catalog: the saved UDF, found by search, opens as a layer.
  await page.click('.nav a[href="/workbench/catalog"]');
  await page.fill('#catalog-search', 'e2e_t');
  await page.waitForSelector('#catalog-list .card[data-name="e2e_tiles"]');
  await page.click('#catalog-list .card[data-name="e2e_tiles"] button');
  await page.waitForSelector('.layer[data-name="e2e_tiles"]');

  // Layers: reorder (the list order is the stacking order) and close.
  const names = () => page.$$eval('.layer', (els) => els.map((e) => e.dataset.name));
  const before = await names();
  await page.click('.layer:nth-child(1) button[title="Move down"]');
  const after = await names();
  assert.deepEqual(after, [before[1], before[0], ...before.slice(2)], 'moved down');
  page.once('dialog', (d) => d.accept());
  await page.click(`.layer[data-name="${after[0]}"] button.remove`);
  await waitFor(async () => (await names()).length === before.length - 1, 'the layer closed');
  log('layers reordered and closed');

  // Import an example UDF folder (meta.json + code + utils module): it opens and runs.
  const example = new URL('../../examples/udfs/Cached_Utils/', import.meta.url).pathname;
  await page.click('.nav a[href="/workbench/catalog"]');
  await page.setInputFiles('#catalog-import', ['meta.json', 'Cached_Utils.py', 'utils.py'].map((f) => join(example, f)));
  await page.waitForSelector('.layer[data-name="Cached_Utils"]');
  await page.click('#results-tabs [data-tab="table"]');
  await page.waitForSelector('#result-table', { timeout: 60000 });
  log('imported the Cached_Utils example folder; it ran with its utils module');

  // Add from GitHub: the server fetches the folder (from the fake GitHub the test serves)
  // and saves it; it opens as a layer and draws. A bad URL says what is wrong.
  if (!process.env.E2E_FAKE_GITHUB) {
    log('Add from GitHub: no fake GitHub (E2E_FAKE_GITHUB): skipped');
  } else {
    await page.click('.nav a[href="/workbench/catalog"]');
    await page.fill('#catalog-github', 'https://github.com/fusedio/udfs/tree/main/public/Not_A_Udf');
    await page.click('#catalog-github-add');
    await page.waitForFunction(() => /no meta\.json/.test(document.querySelector('#catalog-message .error')?.textContent ?? ''), null, { timeout: 30000 });
    await page.fill('#catalog-github', 'https://github.com/fusedio/udfs/tree/main/public/Boxes_Example');
    await page.click('#catalog-github-add');
    await page.waitForSelector('.layer[data-name="Boxes_Example"]', { timeout: 60000 });
    await page.waitForFunction(() => (document.querySelector('#run-status')?.textContent ?? '').includes('rows'), null, { timeout: 60000 });
    await waitFor(async () => (await orangePixels().catch(() => 0)) > 2000, 'the GitHub UDF drawn', 30000);
    const listed = await page.request.get(`${url}/server/v1/udfs`, { headers: { Authorization: `Bearer ${token}` } });
    assert((await listed.json()).some((u) => u.name === 'Boxes_Example'), 'the GitHub UDF is saved');
    log('Add from GitHub: fetched, saved, opened and drawn; a folder without meta.json is refused');
  }

  // File Explorer, where the server has the files API (the storage routes): upload a CSV,
  // sign it, open it as a UDF from the reader template and see its rows.
  const filesApi = await page.request.get(`${url}/server/v1/files/list?path=fd://`, { headers: { Authorization: `Bearer ${token}` } });
  if (filesApi.status() === 404 && (await filesApi.text()).includes('No route')) {
    log('File Explorer: this server has no files API (storage routes): skipped');
  } else {
    const csv = join(userDataDir, 'e2e_points.csv');
    writeFileSync(csv, 'name,x\nalpha,1\nbeta,2\n');
    await page.click('.nav a[href="/workbench/files"]');
    await page.waitForSelector('#files-list');
    await page.setInputFiles('#files-upload', csv);
    const card = '#files-list .card[data-url="fd://e2e_points.csv"]';
    await page.waitForSelector(card, { timeout: 30000 });
    await page.click(`${card} button.sign`);
    const signedUrl = await page.textContent('#signed-url');
    assert.equal(execFileSync('curl', ['-s', signedUrl], { encoding: 'utf8' }), 'name,x\nalpha,1\nbeta,2\n');
    await page.click(`${card} button.open-udf`);
    await page.waitForSelector('.layer[data-name="Read_e2e_points"]');
    await page.click('#results-tabs [data-tab="table"]');
    await page.waitForFunction(() => document.querySelector('#result-table')?.textContent.includes('beta'), null, { timeout: 60000 });
    log('File Explorer: uploaded, signed and opened a CSV as a UDF');
  }

  // Jobs, where the server has the batch jobs API: a job's live logs, and cancelling one.
  const auth = { Authorization: `Bearer ${token}` };
  const jobsApi = await page.request.get(`${url}/server/v1/jobs`, { headers: auth });
  if (jobsApi.status() === 404 && (await jobsApi.text()).includes('No route')) {
    log('Jobs: this server has no batch jobs API (jobs routes): skipped');
  } else {
    const job = (name, code, tasks) => page.request.post(`${url}/server/v1/jobs`, { headers: auth, data: {
      kind: 'udf', name, config: { udf: { name, code, entrypoint: 'udf', headers: [] }, parameters: {} }, tasks } });
    await job('e2e_job', '@fused.udf\ndef udf(i: int = 0):\n    print("task says", i)\n    return i\n', [{ i: 1 }, { i: 2 }]);
    await job('e2e_long', '@fused.udf\ndef udf(i: int = 0):\n    import time\n    time.sleep(60)\n    return i\n', [{ i: 1 }]);
    await page.click('.nav a[href="/workbench/jobs"]');
    await page.waitForSelector('#jobs-list .card button.cancel');
    await page.click('#jobs-list .card button.cancel');
    await waitFor(async () => {
      await page.click('#jobs-refresh');
      await page.waitForTimeout(300);
      return /cancel/.test((await page.textContent('#jobs-list .card .job-status').catch(() => '')) ?? '');
    }, 'the job cancelled', 30000);
    await page.click('#jobs-list .card:nth-child(2) a');
    await page.waitForFunction(() => (document.querySelector('#job-logs')?.textContent ?? '').includes('task says 2'), null, { timeout: 60000 });
    log('Jobs: live logs shown, a running job cancelled');
  }

  // An ingested table in the File Explorer: ingested by a server job, opened on the map as
  // a Tile UDF that reads only the chunks in view.
  const filesAndJobs = (await page.request.get(`${url}/server/v1/jobs`, { headers: auth })).ok() &&
    (await page.request.get(`${url}/server/v1/files/list?path=fd://`, { headers: auth })).ok();
  if (!filesAndJobs) {
    log('Ingested table: this server has no files or jobs API: skipped');
  } else {
    let grid = 'lon,lat\n';
    for (let lon = -179; lon < 180; lon += 2) for (let lat = -79; lat < 80; lat += 2) grid += `${lon},${lat}\n`;
    const put = await page.request.put(`${url}/server/v1/files/upload?path=${encodeURIComponent('fd://e2e_geo.csv')}`,
      { headers: auth, data: Buffer.from(grid) });
    assert(put.ok(), `upload: ${put.status()}`);
    const created = await page.request.post(`${url}/server/v1/jobs`, { headers: auth, data: {
      kind: 'ingest', name: 'e2e_ingest', tasks: [{}], config: { kind: 'ingest', input: 'fd://e2e_geo.csv',
        output: 'fd://e2e_table/', params: { lonlat_cols: ['lon', 'lat'], target_num_chunks: 8 } } } });
    assert(created.ok(), `ingest job: ${created.status()} ${await created.text()}`);
    const jobId = (await created.json()).id;
    await waitFor(async () => {
      const status = (await (await page.request.get(`${url}/server/v1/jobs/${jobId}`, { headers: auth })).json()).status;
      assert(status !== 'failed' && status !== 'cancelled', `the ingest job ${status}`);
      return status === 'succeeded';
    }, 'the ingest job', 120000);
    // "Open table" on a folder that is no ingested table says so, and opens nothing.
    const plain = await page.request.put(`${url}/server/v1/files/upload?path=${encodeURIComponent('fd://e2e_plain/a.csv')}`,
      { headers: auth, data: Buffer.from('x\n1\n') });
    assert(plain.ok(), `upload: ${plain.status()}`);
    await page.click('.nav a[href="/workbench/files"]');
    await page.waitForSelector('#files-list .card[data-url^="fd://e2e_plain"]');
    const layersBefore = await page.evaluate(() => JSON.parse(localStorage.getItem('tf.layers') ?? '[]').length);
    await page.click('#files-list .card[data-url^="fd://e2e_plain"] button.open-table');
    await page.waitForFunction(() => /^fd:\/\/e2e_plain\/? is not an ingested table \(it has no _sample\): open its files one by one$/
      .test(document.querySelector('#files-message .error')?.textContent ?? ''), null, { timeout: 30000 });
    assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('tf.layers') ?? '[]').length), layersBefore, 'no layer opened');
    assert(page.url().includes('/workbench/files'), 'still in the File Explorer');
    log('File Explorer: a plain folder is refused by Open table with its reason');
    await page.fill('#files-path', 'fd://e2e_table/');
    await page.click('#files-path + button');
    await page.waitForSelector('#files-list .card[data-url$="_sample"]');
    await page.click('#files-open-table');
    await page.waitForSelector('.layer[data-name="Table_e2e_table"]');
    const status = () => page.locator('#run-status').textContent({ timeout: 1000 }).catch(() => '');
    await waitFor(async () => /^\d+ tiles/.test((await status()) ?? ''), 'table tiles', 60000);
    await page.evaluate(() => window.__map.jumpTo({ center: [0, 20], zoom: 2 }));  // the whole grid in view
    // The page re-renders as it switches to the builder: a detached map is retried.
    await waitFor(async () => (await orangePixels().catch(() => 0)) > 500, 'the table points drawn', 60000);
    log('Ingested table: opened from the File Explorer, drawn tile by tile');
  }

  // Deep link: the app's own paths load the app.
  const deep = await page.request.get(`${url}/workbench/tokens`);
  assert.equal(deep.status(), 200);
  assert.deepEqual(external, [], 'no request leaves the server');

  // Bundle size: the precompressed files terrafused serves.
  const root = process.env.WEB_ROOT;
  if (root) {
    let gz = 0;
    for (const name of readdirSync(root, { recursive: true })) if (name.endsWith('.gz')) gz += statSync(join(root, name)).size;
    figures.bundle_gzipped_mb = Math.round((gz / 1024 / 1024) * 100) / 100;
  }
  console.log(`[e2e] figures ${JSON.stringify(figures)}`);
  if (process.env.E2E_FIGURES) writeFileSync(process.env.E2E_FIGURES, JSON.stringify(figures));
  console.log('1 passed, 0 failed');
} catch (e) {
  await page.screenshot({ path: join(tmpdir(), 'workbench-e2e-failure.png') }).catch(() => {});
  console.error('[e2e] FAILED:', e.stack ?? e, `\n(screenshot: ${join(tmpdir(), 'workbench-e2e-failure.png')})`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
