// Share snippets: every integration needs only the shared-token endpoint and a standard
// format (docs/workbench.md lists them).

export interface SnippetInput {
  /** e.g. http://127.0.0.1:8000/server/v1 */
  baseUrl: string;
  token: string;
  mode: 'file' | 'tile';
  /** UDF parameters to put in the query, as strings. */
  params?: Record<string, string>;
}

export const SNIPPET_NAMES = ['curl', 'fused.run', 'DuckDB', 'deck.gl', 'MapLibre', 'Leaflet', 'QGIS', 'Google Sheets'] as const;
export type SnippetName = (typeof SNIPPET_NAMES)[number];

function query(params: Record<string, string> | undefined, extra: Record<string, string>): string {
  const q = new URLSearchParams({ ...extra, ...(params ?? {}) }).toString();
  return q ? `?${q}` : '';
}

export function fileUrl(s: SnippetInput, format: string): string {
  return `${s.baseUrl}/realtime-shared/${s.token}/run/file${query(s.params, { dtype_out_vector: format })}`;
}

/** The XYZ template; `{z}/{x}/{y}` stay literal for the client to fill. */
export function tileUrl(s: SnippetInput, format: string, raster = false): string {
  const key = raster ? 'dtype_out_raster' : 'dtype_out_vector';
  return `${s.baseUrl}/realtime-shared/${s.token}/run/tiles/{z}/{x}/{y}${query(s.params, { [key]: format })}`;
}

function pyArgs(params: Record<string, string> | undefined): string {
  return Object.entries(params ?? {})
    .map(([k, v]) => `, ${k}=${JSON.stringify(v)}`)
    .join('');
}

export function snippets(s: SnippetInput): Record<SnippetName, string> {
  const tile = s.mode === 'tile';
  const example = tileUrl(s, 'geojson').replace('{z}/{x}/{y}', '12/655/1583');
  return {
    curl: tile ? `curl -sL "${example}"` : `curl -sL "${fileUrl(s, 'csv')}"`,
    'fused.run': [
      'import fused',
      `fused.options.base_url = "${s.baseUrl}"`,
      tile ? `gdf = fused.run("${s.token}", x=655, y=1583, z=12${pyArgs(s.params)})` : `gdf = fused.run("${s.token}"${pyArgs(s.params)})`,
      'print(gdf)',
    ].join('\n'),
    DuckDB: [
      'INSTALL httpfs; LOAD httpfs;',
      'INSTALL spatial; LOAD spatial;',
      `SELECT * FROM read_parquet('${tile ? tileUrl(s, 'parquet').replace('{z}/{x}/{y}', '12/655/1583') : fileUrl(s, 'parquet')}');`,
    ].join('\n'),
    'deck.gl': tile
      ? [
          "import {TileLayer} from '@deck.gl/geo-layers';",
          "import {GeoJsonLayer} from '@deck.gl/layers';",
          'new TileLayer({',
          `  data: '${tileUrl(s, 'geojson')}',`,
          '  minZoom: 0, maxZoom: 19,',
          '  renderSubLayers: (props) => new GeoJsonLayer(props, {data: props.data, getFillColor: [255, 122, 0, 160]}),',
          '});',
        ].join('\n')
      : [
          "import {GeoJsonLayer} from '@deck.gl/layers';",
          `new GeoJsonLayer({id: 'udf', data: '${fileUrl(s, 'geojson')}', pickable: true, getFillColor: [255, 122, 0, 160]});`,
        ].join('\n'),
    MapLibre: tile
      ? [
          "map.addSource('udf', {type: 'vector', tiles: [",
          `  '${tileUrl(s, 'mvt')}'`,
          '], minzoom: 0, maxzoom: 19});',
          "map.addLayer({id: 'udf', type: 'fill', source: 'udf', 'source-layer': 'udf', paint: {'fill-color': '#ff7a00', 'fill-opacity': 0.6}});",
        ].join('\n')
      : [
          `map.addSource('udf', {type: 'geojson', data: '${fileUrl(s, 'geojson')}'});`,
          "map.addLayer({id: 'udf', type: 'fill', source: 'udf', paint: {'fill-color': '#ff7a00', 'fill-opacity': 0.6}});",
        ].join('\n'),
    Leaflet: tile
      ? `L.tileLayer('${tileUrl(s, 'png', true)}', {tileSize: 256, maxZoom: 19}).addTo(map);`
      : `fetch('${fileUrl(s, 'geojson')}').then((r) => r.json()).then((data) => L.geoJSON(data).addTo(map));`,
    QGIS: tile
      ? `Layer > Add Layer > Add Vector Tile Layer > New Generic Connection, URL:\n${tileUrl(s, 'mvt')}`
      : `Layer > Add Layer > Add Vector Layer > Protocol: HTTP(S), URI:\n${fileUrl(s, 'geojson')}`,
    'Google Sheets': `=IMPORTDATA("${tile ? tileUrl(s, 'csv').replace('{z}/{x}/{y}', '12/655/1583') : fileUrl(s, 'csv')}")`,
  };
}
