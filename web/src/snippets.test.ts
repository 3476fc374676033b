import { describe, expect, it } from 'vitest';
import { SNIPPET_NAMES, fileUrl, snippets, tileUrl } from './snippets';

const base = { baseUrl: 'http://127.0.0.1:8123/server/v1', token: 'fsh_abc' };

describe('snippets', () => {
  it('builds file and tile URLs with the UDF parameters', () => {
    expect(fileUrl({ ...base, mode: 'file', params: { year: '2021' } }, 'csv')).toBe(
      'http://127.0.0.1:8123/server/v1/realtime-shared/fsh_abc/run/file?dtype_out_vector=csv&year=2021',
    );
    expect(tileUrl({ ...base, mode: 'tile' }, 'mvt')).toBe('http://127.0.0.1:8123/server/v1/realtime-shared/fsh_abc/run/tiles/{z}/{x}/{y}?dtype_out_vector=mvt');
    expect(tileUrl({ ...base, mode: 'tile' }, 'png', true)).toContain('dtype_out_raster=png');
  });

  it('gives every integration for File mode', () => {
    const s = snippets({ ...base, mode: 'file', params: { n: '3' } });
    expect(Object.keys(s)).toEqual([...SNIPPET_NAMES]);
    expect(s.curl).toBe('curl -sL "http://127.0.0.1:8123/server/v1/realtime-shared/fsh_abc/run/file?dtype_out_vector=csv&n=3"');
    expect(s['fused.run']).toContain('fused.run("fsh_abc", n="3")');
    expect(s['fused.run']).toContain('fused.options.base_url = "http://127.0.0.1:8123/server/v1"');
    expect(s.DuckDB).toContain("read_parquet('http://127.0.0.1:8123/server/v1/realtime-shared/fsh_abc/run/file?dtype_out_vector=parquet&n=3')");
    expect(s['Google Sheets']).toBe('=IMPORTDATA("http://127.0.0.1:8123/server/v1/realtime-shared/fsh_abc/run/file?dtype_out_vector=csv&n=3")');
    expect(s['deck.gl']).toContain('GeoJsonLayer');
    expect(s.MapLibre).toContain("type: 'geojson'");
  });

  it('gives tile templates for Tile mode', () => {
    const s = snippets({ ...base, mode: 'tile' });
    expect(s.curl).toContain('/run/tiles/12/655/1583?dtype_out_vector=geojson');
    expect(s.MapLibre).toContain("'source-layer': 'udf'");
    expect(s.MapLibre).toContain('/run/tiles/{z}/{x}/{y}?dtype_out_vector=mvt');
    expect(s.QGIS).toContain('Vector Tile');
    expect(s.Leaflet).toContain('L.tileLayer(');
    expect(s['deck.gl']).toContain('TileLayer');
    expect(s['fused.run']).toContain('x=655, y=1583, z=12');
  });
});
