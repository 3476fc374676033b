import { describe, expect, it } from 'vitest';
import { DEFAULT_VIZ, PALETTES, h3Column, hexToRgb, parseVizConfig } from './viz';

const feature = (properties: Record<string, unknown>) => ({ type: 'Feature', geometry: null, properties });

describe('parseVizConfig', () => {
  it('gives the defaults for an empty config', () => {
    expect(parseVizConfig('').config).toEqual(DEFAULT_VIZ);
    expect(parseVizConfig(undefined).config.tileLayer.props).toMatchObject({ minZoom: 0, maxZoom: 19, tileSize: 256 });
  });

  it('reads @@type and compiles @@= accessors over properties', () => {
    const { config, error } = parseVizConfig({
      vectorLayer: { '@@type': 'H3HexagonLayer', getHexagon: '@@=properties.hex', getFillColor: '@@=[255, (1 - properties.metric/500) * 255, 0]', extruded: true },
    });
    expect(error).toBeUndefined();
    expect(config.vectorLayer.type).toBe('H3HexagonLayer');
    const p = config.vectorLayer.props as any;
    expect(p.extruded).toBe(true);
    expect(p.getHexagon(feature({ hex: '8a2a1072b59ffff' }))).toBe('8a2a1072b59ffff');
    expect(p.getFillColor(feature({ metric: 250 }))).toEqual([255, 127.5, 0]);
    expect(config.tileLayer).toEqual(DEFAULT_VIZ.tileLayer);  // missing sections keep defaults
  });

  it('accepts the docs examples with comments and hasProp', () => {
    const text = `{
      "vectorLayer": {
        "@@type": "GeoJsonLayer",
        // highlight-next-line
        "getFillColor": {"@@function": "hasProp", "property": "metric",
                         "present": "@@=[255, (1 - properties.metric/500) * 255, 0]", "absent": [220, 255, 100]},
        "getElevation": {"@@function": "hasProp", "property": "metric", "present": "@@=properties.metric", "absent": 1}
      }
    }`;
    const { config, error } = parseVizConfig(text);
    expect(error).toBeUndefined();
    const p = config.vectorLayer.props as any;
    expect(p.getFillColor(feature({ metric: 0 }))).toEqual([255, 255, 0]);
    expect(p.getFillColor(feature({}))).toEqual([220, 255, 100]);
    expect(p.getElevation(feature({ metric: 7 }))).toBe(7);
    expect(p.getElevation(feature({ metric: null }))).toBe(1);
  });

  it('colors by category, continuous ramp and bins with CARTO palettes', () => {
    const { config } = parseVizConfig({
      vectorLayer: {
        a: { '@@function': 'colorCategories', attr: 'how', domain: ['x', 'y'], colors: 'TealRose' },
        b: { '@@function': 'colorContinuous', attr: 'count', domain: [0, 100], colors: 'Tropic', nullColor: [184, 14, 184] },
        c: { '@@function': 'colorBins', attr: 'v', domain: [10, 20], colors: ['#000000', '#808080', '#ffffff'] },
      },
    });
    const p = config.vectorLayer.props as any;
    expect(p.a(feature({ how: 'y' }))).toEqual(hexToRgb(PALETTES.TealRose[1]));
    expect(p.a(feature({ how: 'z' }))).toEqual([128, 128, 128]);
    expect(p.b(feature({ count: 0 }))).toEqual(hexToRgb(PALETTES.Tropic[0]));
    expect(p.b(feature({ count: 100 }))).toEqual(hexToRgb(PALETTES.Tropic[6]));
    expect(p.b(feature({ count: 50 }))).toEqual(hexToRgb(PALETTES.Tropic[3]));
    expect(p.b(feature({}))).toEqual([184, 14, 184]);
    expect([5, 10, 15, 25].map((v) => p.c(feature({ v })))).toEqual([[0, 0, 0], [128, 128, 128], [128, 128, 128], [255, 255, 255]]);
  });

  it('evaluates expressions without running code', () => {
    const { config, error } = parseVizConfig({
      vectorLayer: { a: '@@=properties.v > 1 ? [255, 0, 0] : [0, 0, 255]', b: '@@=-', c: '@@=properties.name' },
    });
    expect(error).toBeUndefined();
    const p = config.vectorLayer.props as any;
    expect(p.a(feature({ v: 2 }))).toEqual([255, 0, 0]);
    expect(p.a(feature({ v: 0 }))).toEqual([0, 0, 255]);
    expect(p.c(feature({ name: 'x' }))).toBe('x');
    const f = feature({});
    expect(p.b(f)).toBe(f);
    const bad = parseVizConfig({ vectorLayer: { a: '@@=properties.constructor.constructor("alert(1)")()' } });
    expect(bad.error).toMatch(/Invalid expression .*Function calls not allowed/);
  });

  it('reports bad configs by name and keeps drawing with the defaults', () => {
    expect(parseVizConfig('{"vectorLayer": ').error).toMatch(/JSON|Unexpected/);
    expect(parseVizConfig({ vectorLayer: { x: { '@@function': 'nope' } } }).error).toBe("Unknown @@function 'nope': use one of hasProp, colorCategories, colorContinuous, colorBins");
    expect(parseVizConfig({ vectorLayer: { x: { '@@function': 'colorContinuous', attr: 'a', colors: 'Nope' } } }).error).toMatch(/Unknown palette 'Nope'/);
    expect(parseVizConfig('[1]').error).toBe('The viz config must be a JSON object');
  });
});

describe('h3Column', () => {
  const row = (properties: Record<string, unknown>) => ({ type: 'Feature', geometry: null, properties });
  it('finds the H3 cell column of a table', () => {
    expect(h3Column([row({ hex: '8828308281fffff', v: 1 })])).toBe('hex');
    expect(h3Column([row({ v: 1, cells: '8828308281fffff' })])).toBe('cells');
    expect(h3Column([row({ hex: 'not a cell', v: 1 })])).toBeNull();
    expect(h3Column([])).toBeNull();
  });
});
