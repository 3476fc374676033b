// The Visualize tab: Fused's layer config (deck.gl JSON) → deck.gl layer props.
// Top-level keys: tileLayer, rasterLayer, vectorLayer, hexLayer; each has "@@type" and
// props. Values: "@@=<expr>" accessors over the feature (`properties.x`), and
// {"@@function": hasProp | colorCategories | colorContinuous | colorBins, ...}.

import { _parseExpressionString } from '@deck.gl/json';

export type Accessor = (d: any) => unknown;
export interface LayerSpec {
  type: string;
  props: Record<string, unknown>;
}
export interface VizConfig {
  tileLayer: LayerSpec;
  rasterLayer: LayerSpec;
  vectorLayer: LayerSpec;
  hexLayer?: LayerSpec;
}
type Color = number[];

/** CARTO color palettes (cartocolors, CC BY 3.0), the names the Fused docs use. */
export const PALETTES: Record<string, string[]> = {
  Bold: ['#7F3C8D', '#11A579', '#3969AC', '#F2B701', '#E73F74', '#80BA5A', '#E68310', '#008695', '#CF1C90', '#f97b72', '#4b4b8f', '#A5AA99'],
  Pastel: ['#66C5CC', '#F6CF71', '#F89C74', '#DCB0F2', '#87C55F', '#9EB9F3', '#FE88B1', '#C9DB74', '#8BE0A4', '#B497E7', '#D3B484', '#B3B3B3'],
  Vivid: ['#E58606', '#5D69B1', '#52BCA3', '#99C945', '#CC61B0', '#24796C', '#DAA51B', '#2F8AC4', '#764E9F', '#ED645A', '#CC3A8E', '#A5AA99'],
  BluYl: ['#f7feae', '#b7e6a5', '#7ccba2', '#46aea0', '#089099', '#00718b', '#045275'],
  Sunset: ['#f3e79b', '#fac484', '#f8a07e', '#eb7f86', '#ce6693', '#a059a0', '#5c53a5'],
  SunsetDark: ['#fcde9c', '#faa476', '#f0746e', '#e34f6f', '#dc3977', '#b9257a', '#7c1d6f'],
  TealRose: ['#009392', '#72aaa1', '#b1c7b3', '#f1eac8', '#e5b9ad', '#d98994', '#d0587e'],
  Tropic: ['#009B9E', '#42B7B9', '#A7D3D4', '#F1F1F1', '#E4C1D9', '#D691C1', '#C75DAB'],
  Teal: ['#d1eeea', '#a8dbd9', '#85c4c9', '#68abb8', '#4f90a6', '#3b738f', '#2a5674'],
  Magenta: ['#f3cbd3', '#eaa9bd', '#dd88ac', '#ca699d', '#b14d8e', '#91357d', '#6c2167'],
  Earth: ['#A16928', '#bd925a', '#d6bd8d', '#edeac2', '#b5c8b8', '#79a7ac', '#2887a1'],
};

export const DEFAULT_VIZ: VizConfig = {
  tileLayer: { type: 'TileLayer', props: { minZoom: 0, maxZoom: 19, tileSize: 256, pickable: true } },
  rasterLayer: { type: 'BitmapLayer', props: { pickable: true } },
  vectorLayer: {
    type: 'GeoJsonLayer',
    props: {
      stroked: true,
      filled: true,
      pickable: true,
      lineWidthMinPixels: 1,
      pointRadiusMinPixels: 2,
      getFillColor: [255, 122, 0, 160],
      getLineColor: [200, 60, 0, 255],
    },
  },
};

export function hexToRgb(hex: string): Color {
  const h = hex.replace('#', '');
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}

function palette(colors: unknown, fallback = 'Bold'): Color[] {
  if (Array.isArray(colors)) return colors.map((c) => (typeof c === 'string' ? hexToRgb(c) : (c as Color)));
  const name = typeof colors === 'string' ? colors : fallback;
  const hexes = PALETTES[name];
  if (!hexes) throw new Error(`Unknown palette '${name}': use one of ${Object.keys(PALETTES).join(', ')}`);
  return hexes.map(hexToRgb);
}

function prop(d: any, attr: string): unknown {
  return d?.properties ? d.properties[attr] : d?.[attr];
}

/** Evaluates a value that may be an accessor. */
function resolve(value: unknown, d: any): unknown {
  return typeof value === 'function' ? (value as Accessor)(d) : value;
}

function interpolate(colors: Color[], t: number): Color {
  const x = Math.min(1, Math.max(0, t)) * (colors.length - 1);
  const i = Math.min(colors.length - 2, Math.floor(x));
  if (colors.length === 1) return colors[0];
  const f = x - i;
  return colors[i].map((c, k) => Math.round(c + (colors[i + 1][k] - c) * f));
}

export const FUNCTIONS: Record<string, (args: any) => Accessor> = {
  hasProp: ({ property, present, absent }) => (d) => {
    const v = prop(d, property);
    return v !== undefined && v !== null ? resolve(present, d) : resolve(absent, d);
  },
  colorCategories: ({ attr, domain, colors, othersColor = [128, 128, 128] }) => {
    const cs = palette(colors);
    const index = new Map<unknown, number>((domain ?? []).map((v: unknown, i: number) => [v, i]));
    return (d) => {
      const i = index.get(prop(d, attr));
      return i === undefined ? othersColor : cs[i % cs.length];
    };
  },
  colorContinuous: ({ attr, domain, colors, steps, nullColor = [128, 128, 128] }) => {
    let cs = palette(colors, 'BluYl');
    if (steps && steps > 1) cs = Array.from({ length: steps }, (_, i) => interpolate(cs, i / (steps - 1)));
    const [min, max] = domain ?? [0, 1];
    return (d) => {
      const v = prop(d, attr);
      if (v === null || v === undefined || Number.isNaN(Number(v))) return nullColor;
      return interpolate(cs, (Number(v) - min) / (max - min || 1));
    };
  },
  colorBins: ({ attr, domain, colors, nullColor = [128, 128, 128] }) => {
    const cs = palette(colors, 'BluYl');
    const edges: number[] = domain ?? [];
    return (d) => {
      const v = prop(d, attr);
      if (v === null || v === undefined) return nullColor;
      let bin = 0;
      while (bin < edges.length && Number(v) >= edges[bin]) bin++;
      return cs[Math.min(bin, cs.length - 1)];
    };
  },
};

/**
 * Compiles "@@=<expr>" with deck.gl's JSON expression evaluator (as Fused does): the
 * feature's fields (`properties`, `geometry`) are in scope; arithmetic, comparisons,
 * conditionals, arrays and member access work, function calls are refused. It never runs
 * code: a shared UDF's style cannot reach the page (or the token it keeps).
 */
export function compileExpression(expr: string): Accessor {
  const body = expr.trim();
  if (body === '' || body === '-') return (d) => d;
  let fn: Accessor;
  try {
    fn = _parseExpressionString(body, {} as any) as Accessor;
  } catch (e) {
    throw new Error(`Invalid expression '@@=${body}': ${(e as Error).message}`);
  }
  return (d) => {
    try {
      return fn(d ?? {});
    } catch {
      return undefined;
    }
  };
}

/** Converts JSON values: "@@=" strings to accessors, "@@function" objects to their result. */
export function convert(value: unknown): unknown {
  if (typeof value === 'string' && value.startsWith('@@=')) return compileExpression(value.slice(3));
  if (Array.isArray(value)) return value.map(convert);
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) if (k !== '@@function') args[k] = convert(v);
    if ('@@function' in obj) {
      const name = String(obj['@@function']);
      const fn = FUNCTIONS[name];
      if (!fn) throw new Error(`Unknown @@function '${name}': use one of ${Object.keys(FUNCTIONS).join(', ')}`);
      return fn(args);
    }
    return args;
  }
  return value;
}

/** Removes // and /* comments outside strings (the docs' examples carry them). */
export function stripComments(text: string): string {
  let out = '';
  let quote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') quote = false;
    } else if (c === '"') {
      quote = true;
      out += c;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
    } else out += c;
  }
  return out;
}

function section(raw: unknown, fallback: LayerSpec | undefined): LayerSpec | undefined {
  if (!raw || typeof raw !== 'object') return fallback;
  const { '@@type': type, ...rest } = raw as Record<string, unknown>;
  return { type: typeof type === 'string' ? type : fallback?.type ?? 'GeoJsonLayer', props: convert(rest) as Record<string, unknown> };
}

/**
 * Parses a viz config (text or object). Missing sections get the defaults; a config that
 * does not parse falls back to the defaults and reports why.
 */
export function parseVizConfig(input: unknown): { config: VizConfig; error?: string } {
  try {
    const raw = typeof input === 'string' ? (input.trim() ? JSON.parse(stripComments(input)) : {}) : input ?? {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error('The viz config must be a JSON object');
    const r = raw as Record<string, unknown>;
    return {
      config: {
        tileLayer: section(r.tileLayer, DEFAULT_VIZ.tileLayer)!,
        rasterLayer: section(r.rasterLayer, DEFAULT_VIZ.rasterLayer)!,
        vectorLayer: section(r.vectorLayer, DEFAULT_VIZ.vectorLayer)!,
        hexLayer: section(r.hexLayer, undefined),
      },
    };
  } catch (e) {
    return { config: DEFAULT_VIZ, error: (e as Error).message };
  }
}

export const DEFAULT_VIZ_TEXT = JSON.stringify(
  {
    tileLayer: { '@@type': 'TileLayer', minZoom: 0, maxZoom: 19, tileSize: 256, pickable: true },
    rasterLayer: { '@@type': 'BitmapLayer', pickable: true },
    vectorLayer: {
      '@@type': 'GeoJsonLayer',
      stroked: true,
      filled: true,
      pickable: true,
      lineWidthMinPixels: 1,
      pointRadiusMinPixels: 2,
      getFillColor: [255, 122, 0, 160],
      getLineColor: [200, 60, 0, 255],
    },
  },
  null,
  2,
);

const H3_CELL = /^[0-9a-f]{15}$/i;
const H3_NAMES = ['hex', 'h3', 'h3_index', 'cell_id', 'cell', 'index'];

/**
 * The column holding H3 cell ids in a table without geometry (drawn as hexagons when the
 * config has no hexLayer): a usual name first, else any column of 15-hex-digit strings.
 */
export function h3Column(features: any[]): string | null {
  const first = features.find((f) => f?.properties)?.properties as Record<string, unknown> | undefined;
  if (!first) return null;
  const isCell = (k: string) => typeof first[k] === 'string' && H3_CELL.test(first[k] as string);
  return H3_NAMES.find((k) => k in first && isCell(k)) ?? Object.keys(first).find(isCell) ?? null;
}
