// The offline base map: Natural Earth 1:110m land (public domain, via the world-atlas
// package) converted to GeoJSON once, served with the bundle. No tile server needed.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { feature } from 'topojson-client';

const out = new URL('../public/basemap/land.geojson', import.meta.url);
if (!existsSync(out)) {
  const require = createRequire(import.meta.url);
  const topo = JSON.parse(readFileSync(require.resolve('world-atlas/land-110m.json'), 'utf8'));
  mkdirSync(new URL('../public/basemap/', import.meta.url), { recursive: true });
  writeFileSync(out, JSON.stringify(feature(topo, topo.objects.land)));
}
