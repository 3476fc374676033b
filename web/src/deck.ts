// deck.gl and h3-js, loaded after the first paint (a separate chunk): the editor and the
// base map do not need them, and they are a third of the bundle.
export { MapboxOverlay } from '@deck.gl/mapbox';
export { BitmapLayer, GeoJsonLayer } from '@deck.gl/layers';
export { H3HexagonLayer, TileLayer } from '@deck.gl/geo-layers';
export { cellToLatLng, getResolution, isValidCell } from 'h3-js';
