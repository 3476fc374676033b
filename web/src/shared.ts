// The read-only view of a shared link, /workbench/shared/<token>?mode=tile|file: no sign-in,
// only the public shared-token routes. Tiles come as MVT (PNG for raster UDFs), files as
// GeoJSON or PNG; the code shows when the token was created with include_code.
import maplibregl from 'maplibre-gl';
import { MapboxOverlay } from '@deck.gl/mapbox';
import { BitmapLayer, GeoJsonLayer } from '@deck.gl/layers';
import { TileLayer } from '@deck.gl/geo-layers';
import { parse } from '@loaders.gl/core';
import { MVTLoader } from '@loaders.gl/mvt';
import { parseVizConfig } from './viz';

export async function renderShared(token: string, mode: 'file' | 'tile', style: maplibregl.StyleSpecification) {
  const base = `${location.origin}/server/v1/realtime-shared/${encodeURIComponent(token)}`;
  const app = document.getElementById('app')!;
  const mapEl = document.createElement('div');
  mapEl.id = 'map';
  mapEl.style.cssText = 'position:absolute;inset:0 360px 0 0';
  const side = document.createElement('div');
  side.style.cssText = 'position:absolute;top:0;right:0;bottom:0;width:360px;overflow:auto;padding:12px;background:#fff;border-left:1px solid #d8dce1';
  side.innerHTML = '<h3>Shared UDF <small>(read-only)</small></h3><div id="shared-status"></div><pre id="shared-selected"></pre><pre id="shared-code" class="followup"></pre>';
  app.replaceChildren(mapEl, side);
  const status = side.querySelector('#shared-status')!;

  // The code and style, when the owner shared them.
  let viz = parseVizConfig(undefined).config;
  const udf = await fetch(`${base}/udf`);
  if (udf.ok) {
    const doc = await udf.json();
    side.querySelector('#shared-code')!.textContent = doc.code;
    viz = parseVizConfig(doc.metadata?.['fused:vizConfig']).config;
    const view = doc.metadata?.['fused:defaultViewState'];
    if (view?.latitude !== undefined) style = { ...style, center: [view.longitude, view.latitude], zoom: view.zoom };
  } else {
    side.querySelector('#shared-code')!.textContent = 'The code is not shared with this link.';
  }
  const map = new maplibregl.Map({ container: mapEl, style, center: style.center as any ?? [0, 20], zoom: style.zoom ?? 1, attributionControl: false });
  (window as any).__map = map;
  const overlay = new MapboxOverlay({
    layers: [],
    onClick: (info: any) => {
      side.querySelector('#shared-selected')!.textContent = info.object ? JSON.stringify(info.object.properties ?? info.object, null, 2) : '';
    },
  } as any);
  map.addControl(overlay as any);
  const vector = (id: string, data: any) => new GeoJsonLayer({ id, data, ...viz.vectorLayer.props } as any);

  if (mode === 'tile') {
    let count = 0;
    overlay.setProps({
      layers: [
        new TileLayer({
          id: 'shared-tiles',
          ...viz.tileLayer.props,
          maxRequests: 15,
          getTileData: async ({ index, signal }: any) => {
            const response = await fetch(`${base}/run/tiles/${index.z}/${index.x}/${index.y}?dtype_out_vector=mvt`, { signal });
            status.textContent = `${++count} tiles`;
            if (response.status === 204 || !response.ok) return null;
            const bytes = await response.arrayBuffer();
            if ((response.headers.get('Content-Type') ?? '').startsWith('image/')) {
              return { image: await createImageBitmap(new Blob([bytes])) };
            }
            // Decoded here, without loaders.gl's worker (it would be fetched from a CDN).
            const features = await parse(bytes, MVTLoader, {
              mvt: { shape: 'geojson', coordinates: 'wgs84', tileIndex: index },
              worker: false,
            } as any);
            return { features };
          },
          renderSubLayers: (props: any) => {
            const d = props.data;
            if (!d) return null;
            const { west, south, east, north } = props.tile.bbox;
            if (d.image) return new BitmapLayer({ ...props, data: undefined, image: d.image, bounds: [west, south, east, north], ...viz.rasterLayer.props } as any);
            return vector(`${props.id}-v`, d.features);
          },
        } as any),
      ],
    });
    return;
  }
  const response = await fetch(`${base}/run/file?dtype_out_vector=geojson`);
  if (!response.ok) {
    status.textContent = `HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`;
    return;
  }
  if ((response.headers.get('Content-Type') ?? '').startsWith('image/')) {
    const meta = JSON.parse(response.headers.get('X-Fused-Metadata') ?? '{}');
    const image = await createImageBitmap(await response.blob());
    overlay.setProps({ layers: [new BitmapLayer({ id: 'shared-raster', image, bounds: meta.bounds ?? [-180, -90, 180, 90], ...viz.rasterLayer.props } as any)] });
    return;
  }
  const doc = await response.json();
  const features = doc?.type === 'FeatureCollection' ? doc.features : [];
  status.textContent = `${features.length} features`;
  overlay.setProps({ layers: [vector('shared-file', features)] });
}
