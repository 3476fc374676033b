// The map's own controls (Fused's map bar): location search, base map choice. Pure functions,
// so they are unit tested; main.ts wires them to MapLibre.
import type { StyleSpecification } from 'maplibre-gl';

export type Location = { center: [number, number]; zoom?: number } | { bounds: [number, number, number, number] };

/** The subset of h3-js the search needs (passed in: h3-js loads with deck.gl, after first paint). */
export interface H3 {
  isValidCell(cell: string): boolean;
  cellToLatLng(cell: string): number[];
  getResolution(cell: string): number;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * Parses the map search box. Offline there is no address geocoder, so it takes what Fused's
 * geocoder takes besides addresses: coordinates `lat, lng` (Google Maps' order; `lng, lat` is
 * accepted when only that order is valid), optionally `, zoom`; a box `west, south, east,
 * north`; or an H3 cell id. Throws an Error naming the problem.
 */
export function parseLocation(text: string, h3?: H3): Location {
  const t = text.trim();
  if (!t) throw new Error('Type coordinates (lat, lng), a box (west, south, east, north) or an H3 cell id');
  if (/^[0-9a-f]{15}$/i.test(t)) {
    if (!h3) throw new Error('H3 search is still loading: try again in a moment');
    if (!h3.isValidCell(t.toLowerCase())) throw new Error(`'${t}' is not a valid H3 cell id`);
    const [lat, lng] = h3.cellToLatLng(t.toLowerCase());
    // About the zoom at which the cell fills a good part of the view.
    return { center: [lng, lat], zoom: Math.min(20, Math.round(1.5 + h3.getResolution(t.toLowerCase()) * 1.2)) };
  }
  const parts = t.split(/[\s,;]+/).filter(Boolean);
  if (!parts.every((p) => NUMBER.test(p)) || parts.length < 2 || parts.length > 4) {
    throw new Error(`'${t}' is not a location: offline, the search takes coordinates 'lat, lng' (optionally ', zoom'), ` +
      `a box 'west, south, east, north' or an H3 cell id (no address geocoder)`);
  }
  const n = parts.map(Number);
  const isLat = (v: number) => Math.abs(v) <= 90;
  const isLng = (v: number) => Math.abs(v) <= 180;
  if (n.length === 4) {
    const [w, s, e, nn] = n;
    if (!(isLng(w) && isLng(e) && isLat(s) && isLat(nn)) || w >= e || s >= nn) {
      throw new Error(`'${t}' is not a box: expected west < east in [-180, 180] and south < north in [-90, 90]`);
    }
    return { bounds: [w, s, e, nn] };
  }
  let [lat, lng] = n;
  if (!(isLat(lat) && isLng(lng))) {
    if (isLat(lng) && isLng(lat)) [lat, lng] = [lng, lat];
    else throw new Error(`'${t}' is out of range: latitude must be in [-90, 90] and longitude in [-180, 180]`);
  }
  if (n.length === 3 && !(n[2] >= 0 && n[2] <= 24)) throw new Error(`zoom ${n[2]} is out of range: use 0 to 24`);
  return { center: [lng, lat], ...(n.length === 3 ? { zoom: n[2] } : {}) };
}

export type Basemap = 'light' | 'dark' | 'blank' | 'tiles';
export const BASEMAPS: Record<Basemap, string> = { light: 'Light', dark: 'Dark', blank: 'Blank', tiles: 'Satellite / custom tiles' };

/**
 * The base map's style: the offline Natural Earth land in light or dark colours, a blank
 * background, or the user's raster XYZ tiles (Tokens page → Preferences) over the land.
 * `tiles` without a tile URL falls back to light.
 */
export function basemapStyle(kind: Basemap, tilesUrl: string | null, landUrl = '/workbench/basemap/land.geojson'): StyleSpecification {
  const colours = kind === 'dark' ? ['#1c2530', '#3b4249', '#5c6873'] : ['#d7e3ec', '#f7f6f2', '#9fb0bd'];
  if (kind === 'blank') {
    return { version: 8, sources: {}, layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#ffffff' } }] };
  }
  const style: StyleSpecification = {
    version: 8,
    sources: { land: { type: 'geojson', data: landUrl } },
    layers: [
      { id: 'ocean', type: 'background', paint: { 'background-color': colours[0] } },
      { id: 'land', type: 'fill', source: 'land', paint: { 'fill-color': colours[1] } },
      { id: 'coast', type: 'line', source: 'land', paint: { 'line-color': colours[2], 'line-width': 0.6 } },
    ],
  };
  if (kind === 'tiles' && tilesUrl) {
    style.sources.custom = { type: 'raster', tiles: [tilesUrl], tileSize: 256 };
    style.layers.push({ id: 'custom', type: 'raster', source: 'custom' });
  }
  return style;
}

/** The zoom-to-layer box of a result: its features' coordinates, or a raster's bounds. */
export function featuresBounds(features: any[]): [number, number, number, number] | null {
  let [w, s, e, n] = [Infinity, Infinity, -Infinity, -Infinity];
  const visit = (c: any): void => {
    if (typeof c[0] === 'number') {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(visit);
  };
  for (const f of features) if (f?.geometry?.coordinates) visit(f.geometry.coordinates);
  return Number.isFinite(w) ? [w, s, e, n] : null;
}
