// The terrafuse workbench: UDF Builder (layers, editor, parameters, map, results), Share,
// Catalog and Tokens pages. Plain DOM + TypeScript; MapLibre draws the base map and deck.gl
// (as a MapLibre overlay) draws the UDF layers.
import 'maplibre-gl/dist/maplibre-gl.css';
import './style.css';
import maplibregl from 'maplibre-gl';
import { EditorView, basicSetup } from 'codemirror';
import { python } from '@codemirror/lang-python';
import { keymap } from '@codemirror/view';
import { Prec } from '@codemirror/state';
import { Api, ApiError, RunResult, UdfDoc } from './api';
import { Param, defaultText, paramValue, parseParams, takesBounds } from './params';
import { DEFAULT_VIZ_TEXT, h3Column, parseVizConfig } from './viz';
import { SNIPPET_NAMES, snippets } from './snippets';
import { leadingTrailing } from './debounce';
import { BASEMAPS, Basemap, basemapStyle, featuresBounds, parseLocation } from './mapcontrols';
type Deck = typeof import('./deck');
import { readZip } from './zip';
import { FileEntry, formatSize, isIngestedTable, parentUrl, readerTemplate, tableTemplate } from './files';

// ---------------------------------------------------------------------------------------
// State

type Mode = 'auto' | 'file' | 'tile';
interface Layer {
  id: string;
  name: string;
  code: string;
  utils: string;
  /** The header module's name (`utils` unless the UDF came with another). */
  utilsName?: string;
  viz: string;
  mode: Mode;
  visible: boolean;
  params: Record<string, string>;
  owner?: string;
  saved: boolean;
  dirty: boolean;
  defaultView?: { latitude: number; longitude: number; zoom: number; enable?: boolean };
  // Runtime only (not persisted).
  result?: RunResult;
  runKey?: number;
  tileRequests?: Map<string, RunResult>;
  abort?: AbortController;
  drawLarge?: boolean;
}

const TEMPLATE = `@fused.udf
def udf(n: int = 10):
    import geopandas as gpd
    import shapely
    points = [shapely.Point(-122.4 + i * 0.01, 37.78) for i in range(n)]
    print(f"{n} points")
    return gpd.GeoDataFrame({"i": list(range(n))}, geometry=points, crs=4326)
`;
// Results above this size wait for "Draw it anyway"; localStorage 'terrafuse.largeResultBytes'
// overrides it (for machines that draw big layers well, and for the end-to-end test).
const largeResultBytes = () => Number(localStorage.getItem('terrafuse.largeResultBytes')) || 50 * 1024 * 1024;
// Short: a run of a trivial UDF takes ~20 ms, and a newer edit aborts the older run anyway.
const RUN_DEBOUNCE_MS = 50;

/** Figures the end-to-end test reads (docs/workbench.md: performance). */
// runParts: where each run's time went (server, request + decode in the browser, total).
const perf = { runToDraw: [] as number[], editToDraw: [] as number[], runParts: [] as { server: number; fetch: number; total: number }[], tileViewport: [] as { ms: number; tiles: number }[], runs: 0 };
(window as any).__workbench = perf;

const state = {
  api: null as Api | null,
  owner: '',
  layers: [] as Layer[],
  activeId: '',
  tab: 'code' as 'code' | 'utils' | 'viz',
  resultsTab: 'stdout' as 'stdout' | 'selected' | 'request' | 'table',
  selected: null as unknown,
  pendingDraw: null as { started: number; edit: number; server: number; fetch: number } | null,
  /** Frozen: edits and map moves run nothing; Tile mode shows only tiles already run. */
  frozen: false,
};

// Builder elements are looked up in the builder even while another page is shown.
const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = builderDom ?? document) => root.querySelector(sel) as T;
function h(tag: string, attrs: Record<string, any> = {}, ...children: (Node | string | null | undefined)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

const active = () => state.layers.find((l) => l.id === state.activeId);
const newId = () => Math.random().toString(36).slice(2, 10);

function persist() {
  const keep = state.layers.map(({ result, tileRequests, abort, runKey, ...rest }) => rest);
  localStorage.setItem('tf.layers', JSON.stringify(keep));
  localStorage.setItem('tf.active', state.activeId);
}

// ---------------------------------------------------------------------------------------
// Sign-in: the private API token from the URL fragment (#token=..., what `terrafuse serve`
// prints), else from this browser's storage, else typed in.

function tokenFromUrl(): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, '', location.pathname + location.search);  // keep it out of history
  return decodeURIComponent(match[1]);
}

async function signIn(token: string): Promise<boolean> {
  const api = new Api(token);
  try {
    state.owner = (await api.whoami()).owner;
  } catch (e) {
    renderSignIn(e instanceof ApiError && e.status === 401 ? 'That token was not accepted.' : String(e));
    return false;
  }
  state.api = api;
  localStorage.setItem('tf.token', token);
  return true;
}

function renderSignIn(message = '') {
  const input = h('input', { type: 'password', placeholder: 'API token (tfk_...)', id: 'token-input' }) as HTMLInputElement;
  const form = h(
    'form',
    { class: 'signin', onsubmit: async (e: Event) => {
      e.preventDefault();
      if (await signIn(input.value.trim())) route();
    } },
    h('h2', {}, 'terrafuse workbench'),
    h('p', {}, 'Sign in with your private API token: `terrafuse serve` prints a link with it, and it is in <home>/credentials.'),
    input,
    h('button', { class: 'primary', type: 'submit' }, 'Sign in'),
    message ? h('p', { class: 'error' }, message) : null,
  );
  document.getElementById('app')!.replaceChildren(form);
}

// ---------------------------------------------------------------------------------------
// Pages

function shell(page: 'builder' | 'catalog' | 'tokens' | 'files' | 'jobs', content: HTMLElement) {
  const link = (id: string, label: string, path: string) =>
    h('a', { href: path, class: page === id ? 'active' : '', onclick: (e: Event) => { e.preventDefault(); navigate(path); } }, label);
  const nav = h(
    'nav',
    { class: 'nav' },
    link('builder', 'UDF Builder', '/workbench'),
    link('catalog', 'Catalog', '/workbench/catalog'),
    link('tokens', 'Tokens', '/workbench/tokens'),
    link('files', 'Files', '/workbench/files'),
    link('jobs', 'Jobs', '/workbench/jobs'),
  );
  document.getElementById('app')!.replaceChildren(h('div', { class: 'shell' }, nav, content));
}

function navigate(path: string) {
  history.pushState(null, '', path);
  route();
}

let builderDom: HTMLElement | null = null;

function route() {
  if (!state.api) return renderSignIn();
  const path = location.pathname.replace(/\/+$/, '');
  if (path.endsWith('/catalog')) return renderCatalog();
  if (path.endsWith('/tokens')) return renderTokens();
  if (path.endsWith('/jobs')) return renderJobs();
  if (path.endsWith('/files')) return renderFiles(new URLSearchParams(location.search).get('path') ?? 'fd://');
  if (!builderDom) builderDom = buildBuilder();
  shell('builder', builderDom);
  map.resize();
}
window.addEventListener('popstate', route);

// ---------------------------------------------------------------------------------------
// UDF Builder

let map: maplibregl.Map;
let overlay: InstanceType<Deck['MapboxOverlay']> | undefined;
// Loaded once the base map has loaded (or a result needs drawing before that): evaluating
// deck.gl and creating its WebGL context would otherwise delay the first paint of the map.
let D: Deck | undefined;
let deckLoading: Promise<Deck> | undefined;
function loadDeck(): Promise<Deck> {
  deckLoading ??= import('./deck').then((m) => (performance.mark('tf:deck'), (D = m)));
  return deckLoading;
}
const editors: Record<'code' | 'utils' | 'viz', EditorView> = {} as any;
let loadingDoc = false;

/** The chosen base map (map bar), else the user's tiles when set (Tokens → Preferences), else light. */
function basemapKind(): Basemap {
  const chosen = localStorage.getItem('tf.basemapKind') as Basemap | null;
  if (chosen && chosen in BASEMAPS) return chosen;
  return localStorage.getItem('tf.basemap') ? 'tiles' : 'light';
}

function baseStyle(): maplibregl.StyleSpecification {
  return basemapStyle(basemapKind(), localStorage.getItem('tf.basemap'));
}

function editorView(parent: HTMLElement, lang: 'python' | 'json', onChange: (text: string) => void): EditorView {
  const keys = Prec.highest(
    keymap.of([
      { key: 'Shift-Enter', run: () => (runActive(true), true) },
      { key: 'Mod-s', run: () => (saveActive(), true), preventDefault: true },
      { key: 'Mod-k', run: () => (openPalette(), true), preventDefault: true },
      { key: 'Alt-Shift-f', run: () => (formatActive(), true), preventDefault: true },
    ]),
  );
  return new EditorView({
    parent,
    extensions: [
      basicSetup,
      keys,
      EditorView.lineWrapping,
      lang === 'python' ? python() : [],
      EditorView.updateListener.of((u: any) => {
        if (u.docChanged && !loadingDoc) onChange(u.state.doc.toString());
      }),
    ],
  });
}

function buildBuilder(): HTMLElement {
  const root = h(
    'div',
    { class: 'builder' },
    h(
      'section',
      { class: 'layers' },
      h('header', {}, h('button', { class: 'primary', id: 'new-udf', onclick: () => addLayer({}) }, 'New UDF'),
        h('button', { onclick: () => navigate('/workbench/catalog') }, 'Add…')),
      h('div', { id: 'layer-list' }),
    ),
    h(
      'section',
      { class: 'editor' },
      h(
        'div',
        { class: 'toolbar' },
        h('input', { class: 'name', id: 'udf-name', title: 'UDF name', oninput: (e: Event) => {
          const l = active();
          if (l) { l.name = (e.target as HTMLInputElement).value; l.dirty = true; renderLayerList(); persist(); }
        } }),
        h('select', { id: 'mode', title: 'Run mode', onchange: (e: Event) => {
          const l = active();
          if (l) { l.mode = (e.target as HTMLSelectElement).value as Mode; l.dirty = true; runActive(true); renderLayerList(); }
        } }, h('option', { value: 'auto' }, 'Auto'), h('option', { value: 'file' }, 'File (viewport)'), h('option', { value: 'tile' }, 'Tile')),
        h('button', { id: 'run', title: 'Shift+Enter', onclick: () => runActive(true) }, 'Run'),
        h('button', { id: 'save', title: 'Ctrl/Cmd+S', onclick: () => saveActive() }, 'Save'),
        h('button', { id: 'share', onclick: () => openShare() }, 'Share'),
        h('label', { title: 'Stop running the UDF on edits and map moves' },
          h('input', { type: 'checkbox', id: 'freeze', onchange: (e: Event) => setFrozen((e.target as HTMLInputElement).checked) }), ' Freeze'),
      ),
      h('div', { class: 'tabs', id: 'editor-tabs' },
        ...(['code', 'utils', 'viz'] as const).map((t) =>
          h('button', { 'data-tab': t, onclick: () => { state.tab = t; renderEditorTabs(); } }, { code: 'Code', utils: 'utils module', viz: 'Visualize' }[t]))),
      h('div', { class: 'panes' }, h('div', { id: 'pane-code' }), h('div', { id: 'pane-utils' }), h('div', { id: 'pane-viz' })),
      h('div', { class: 'params', id: 'params' }),
    ),
    h(
      'section',
      { class: 'right' },
      h('div', { class: 'map', id: 'map' }, h('div', { class: 'status', id: 'run-status' }, 'Ready'), mapBar()),
      h(
        'div',
        { class: 'results' },
        h('div', { class: 'tabs', id: 'results-tabs' },
          ...(['stdout', 'selected', 'request', 'table'] as const).map((t) =>
            h('button', { 'data-tab': t, onclick: () => { state.resultsTab = t; renderResults(); } },
              { stdout: 'Stdout', selected: 'Selected object', request: 'Request details', table: 'Table' }[t])),
          h('span', { id: 'map-center', class: 'center', title: 'Map center (latitude, longitude) and zoom' })),
        h('div', { class: 'body', id: 'results-body' }),
      ),
    ),
  );
  document.getElementById('app')!.replaceChildren(root);  // mounted so MapLibre can measure

  editors.code = editorView($('#pane-code', root), 'python', (text) => edited({ code: text }));
  editors.utils = editorView($('#pane-utils', root), 'python', (text) => edited({ utils: text }));
  editors.viz = editorView($('#pane-viz', root), 'json', (text) => edited({ viz: text }, false));

  map = new maplibregl.Map({ container: $('#map', root), style: baseStyle(), center: [-122.42, 37.77], zoom: 11, attributionControl: false });
  (window as any).__map = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: true }), 'bottom-right');
  map.addControl(new maplibregl.FullscreenControl({ container: $('#map', root) }), 'bottom-right');
  const showCenter = () => {
    const c = map.getCenter();
    const el = $('#map-center');
    if (el) el.textContent = `${c.lat.toFixed(5)}, ${c.lng.toFixed(5)} · z${map.getZoom().toFixed(1)}`;
  };
  map.on('move', showCenter);
  showCenter();
  overlay = undefined;
  const container = map;
  const attachOverlay = (deck: Deck) => {
    if (map !== container || overlay) return;  // rebuilt meanwhile, or already attached
    overlay = new deck.MapboxOverlay({
      interleaved: false,
      layers: [],
      onClick: (info: any) => {
        state.selected = info.object ?? (info.bitmap ? { pixel: info.bitmap.pixel, layer: info.layer?.id } : null);
        state.resultsTab = 'selected';
        renderResults();
      },
      getTooltip: (info: any) => (info.object?.properties ? { text: JSON.stringify(info.object.properties).slice(0, 300) } : null),
      onAfterRender: () => {
        if (state.pendingDraw) {
          const { started, edit, server, fetch } = state.pendingDraw;
          perf.runToDraw.push(performance.now() - started);
          perf.editToDraw.push(performance.now() - edit);
          perf.runParts.push({ server, fetch, total: performance.now() - started });
          state.pendingDraw = null;
        }
      },
    } as any);
    map.addControl(overlay as any);
    updateMap();
  };
  map.once('load', () => loadDeck().then(attachOverlay));
  setTimeout(() => loadDeck().then(attachOverlay), 3000);  // a base map that never loads (bad tile URL)

  window.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.selected && !document.querySelector('.modal-bg')) {
      state.selected = null;  // leaves debug selection, as in Fused
      renderResults();
    }
    if ((e.metaKey || e.ctrlKey) && e.key === 's' && !e.defaultPrevented) { e.preventDefault(); saveActive(); }
    if ((e.metaKey || e.ctrlKey) && e.key === 'k' && !e.defaultPrevented) { e.preventDefault(); openPalette(); }
  });

  // Reopen what was open in this browser, else start with the template.
  const saved = JSON.parse(localStorage.getItem('tf.layers') ?? '[]') as Layer[];
  state.layers = saved.map((l) => ({ ...l }));
  state.activeId = localStorage.getItem('tf.active') ?? state.layers[0]?.id ?? '';
  if (!state.layers.length) addLayer({});
  else selectLayer(state.activeId || state.layers[0].id);
  map.once('load', () => performance.mark('tf:map-loaded'));
  map.once('load', () => state.layers.forEach((l) => l.visible && runLayer(l)));
  return root;
}

function effectiveMode(l: Layer): 'file' | 'tile' {
  if (l.mode !== 'auto') return l.mode;
  return takesBounds(parseParams(l.code)) && /def\s+udf\s*\(\s*bounds/.test(l.code) ? 'tile' : 'file';
}

function addLayer(init: Partial<Layer>): Layer {
  const layer: Layer = {
    id: newId(),
    name: init.name ?? uniqueName('my_udf'),
    code: TEMPLATE,
    utils: '',
    viz: DEFAULT_VIZ_TEXT,
    mode: 'auto',
    visible: true,
    params: {},
    saved: false,
    dirty: true,
    ...init,
  };
  state.layers.unshift(layer);  // new layers go on top
  selectLayer(layer.id);
  if (map?.loaded()) runLayer(layer);
  if (layer.defaultView?.enable !== false && layer.defaultView) {
    map?.jumpTo({ center: [layer.defaultView.longitude, layer.defaultView.latitude], zoom: layer.defaultView.zoom });
  }
  return layer;
}

function uniqueName(base: string): string {
  let n = 1;
  while (state.layers.some((l) => l.name === (n === 1 ? base : `${base}_${n}`))) n++;
  return n === 1 ? base : `${base}_${n}`;
}

function selectLayer(id: string) {
  state.activeId = id;
  const l = active();
  if (!l || !editors.code) return persist();  // the builder is not built yet: it reads the state when it is
  loadingDoc = true;
  for (const [key, view] of Object.entries(editors) as [keyof typeof editors, EditorView][]) {
    const text = key === 'code' ? l.code : key === 'utils' ? l.utils : l.viz;
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
  }
  loadingDoc = false;
  ($('#udf-name') as HTMLInputElement).value = l.name;
  ($('#mode') as HTMLSelectElement).value = l.mode;
  renderEditorTabs();
  renderLayerList();
  renderParams();
  renderResults();
  persist();
}

function renderEditorTabs() {
  for (const t of ['code', 'utils', 'viz']) {
    $(`#pane-${t}`).style.display = state.tab === t ? '' : 'none';
    $(`#editor-tabs [data-tab="${t}"]`).classList.toggle('on', state.tab === t);
  }
}

function renderLayerList() {
  const list = $('#layer-list');
  if (!list) return;
  list.replaceChildren(
    ...state.layers.map((l, i) =>
      h(
        'div',
        { class: `layer${l.id === state.activeId ? ' active' : ''}${l.visible ? '' : ' hidden'}`, 'data-name': l.name, onclick: () => selectLayer(l.id) },
        h('input', { type: 'checkbox', title: 'Visible', checked: l.visible, onclick: (e: Event) => {
          e.stopPropagation();
          l.visible = (e.target as HTMLInputElement).checked;
          if (l.visible && !l.result && effectiveMode(l) === 'file') runLayer(l);
          updateMap(); renderLayerList(); persist();
        } }),
        h('span', { class: 'lname', title: l.name }, `${l.name}${l.dirty ? ' *' : ''}`),
        h('small', {}, effectiveMode(l)),
        h('button', { title: 'Zoom to layer', class: 'zoom', onclick: (e: Event) => { e.stopPropagation(); zoomToLayer(l); } }, '⌖'),
        h('button', { title: 'Move up', disabled: i === 0, onclick: (e: Event) => { e.stopPropagation(); move(i, -1); } }, '↑'),
        h('button', { title: 'Move down', disabled: i === state.layers.length - 1, onclick: (e: Event) => { e.stopPropagation(); move(i, 1); } }, '↓'),
        h('button', { title: l.saved ? 'Close (stays saved)' : 'Delete', class: 'remove', onclick: (e: Event) => { e.stopPropagation(); removeLayer(l); } }, '✕'),
      ),
    ),
  );
}

function move(i: number, delta: number) {
  const [l] = state.layers.splice(i, 1);
  state.layers.splice(i + delta, 0, l);
  renderLayerList();
  updateMap();
  persist();
}

function removeLayer(l: Layer) {
  if (!l.saved && l.dirty && l.code !== TEMPLATE && !confirm(`Delete the unsaved UDF '${l.name}'?`)) return;
  l.abort?.abort();
  state.layers = state.layers.filter((x) => x !== l);
  if (!state.layers.length) addLayer({});
  else if (state.activeId === l.id) selectLayer(state.layers[0].id);
  renderLayerList();
  updateMap();
  persist();
}

// Edits run on both edges of the debounce (debounce.ts). `editAt` is the keystroke a run
// answers, for the edit → map figure.
let editAt = 0;
const debouncedRun = leadingTrailing((l: Layer) => runLayer(l), RUN_DEBOUNCE_MS);
function scheduleRun(l: Layer) {
  editAt = performance.now();
  debouncedRun(l);
}
function edited(change: Partial<Layer>, rerun = true) {
  const l = active();
  if (!l) return;
  Object.assign(l, change, { dirty: true });
  if (change.code !== undefined) renderParams();
  renderLayerList();
  persist();
  if (!rerun || state.frozen) return updateMap();  // styles apply at once, without running the UDF
  scheduleRun(l);
}

function renderParams() {
  const l = active();
  const box = $('#params');
  if (!l || !box) return;
  const params = parseParams(l.code).filter((p) => p.type !== 'bounds');
  box.replaceChildren(
    h('b', {}, 'Parameters'),
    ...(params.length ? [] : [h('div', { class: 'followup' }, 'The UDF takes no parameters.')]),
    ...params.map((p: Param) => {
      const value = l.params[p.name] ?? defaultText(p);
      const input =
        p.type === 'bool'
          ? h('input', { type: 'checkbox', 'data-param': p.name, checked: value === 'True' || value === 'true' })
          : h('input', { type: p.type === 'int' || p.type === 'float' ? 'number' : 'text', step: p.type === 'float' ? 'any' : '1', value, 'data-param': p.name, placeholder: p.type });
      input.addEventListener('input', () => {
        l.params[p.name] = input instanceof HTMLInputElement && input.type === 'checkbox' ? String(input.checked) : (input as HTMLInputElement).value;
        persist();
        scheduleRun(l);
      });
      return h('label', {}, h('span', { title: p.type }, p.name), input);
    }),
  );
}

function paramValues(l: Layer): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const params = parseParams(l.code);
  for (const p of params) {
    if (p.type === 'bounds') continue;
    const text = l.params[p.name];
    if (text === undefined) continue;
    const v = paramValue(p, text);
    if (v !== undefined) values[p.name] = v;
  }
  if (effectiveMode(l) === 'file' && takesBounds(params) && map) {
    const b = map.getBounds();
    values.bounds = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  }
  return values;
}

function udfDoc(l: Layer): UdfDoc {
  return { name: l.name, code: l.code, entrypoint: 'udf', headers: l.utils.trim() ? [{ module_name: l.utilsName ?? 'utils', source_code: l.utils }] : [] };
}

function runActive(now: boolean) {
  const l = active();
  if (!l) return;
  debouncedRun.cancel();
  if (now) runLayer(l);
}

/** Runs a layer: File mode posts one run (cancelling the previous); Tile mode re-keys its TileLayer. */
async function runLayer(l: Layer) {
  if (!state.api) return;
  l.abort?.abort();
  l.runKey = (l.runKey ?? 0) + 1;
  if (effectiveMode(l) === 'tile') {
    l.result = undefined;
    l.tileRequests = new Map();
    state.pendingDraw = null;
    updateMap();
    renderResults();
    return;
  }
  const controller = new AbortController();
  l.abort = controller;
  const key = l.runKey;
  setStatus('Running…');
  const started = performance.now();
  const edit = editAt || started;  // runs not caused by an edit count from their start
  editAt = 0;
  try {
    const result = await state.api.run(udfDoc(l), paramValues(l), null, controller.signal);
    if (key !== l.runKey) return;  // a newer run superseded this one
    perf.runs++;
    const firstResult = !l.result;
    l.result = result;
    l.drawLarge = result.bytes < largeResultBytes();
    state.pendingDraw = { started, edit, server: result.metadata.ms ?? 0, fetch: result.clientMs };
    updateMap();
    if (firstResult && result.kind === 'vector' && !l.defaultView) zoomTo(result.features ?? []);
    renderResults();
  } catch (e) {
    if ((e as Error).name === 'AbortError') return;
    l.result = { kind: 'error', status: 0, metadata: {}, error: { message: String(e) }, clientMs: 0, bytes: 0, request: {} };
    renderResults();
  }
}

function zoomTo(features: any[]) {
  const hex = features.length && features.every((f) => !f?.geometry) ? h3Column(features) : null;
  const points = hex && D
    ? features.slice(0, 10000).map((f) => {
      const [lat, lng] = D!.cellToLatLng(f.properties[hex]);
      return { geometry: { coordinates: [lng, lat] } };
    })
    : features;
  const box = featuresBounds(points);
  if (box) map.fitBounds([[box[0], box[1]], [box[2], box[3]]], { padding: 40, duration: 0, maxZoom: 16 });
}

/** Zoom to layer: its result's features or raster bounds, else its default view. */
function zoomToLayer(l: Layer) {
  const r = l.result;
  if (r?.kind === 'vector' && r.features?.length) return zoomTo(r.features);
  if (r?.kind === 'raster' && r.bounds) {
    const [w, s, e, n] = r.bounds;
    return map.fitBounds([[w, s], [e, n]], { padding: 40, duration: 0 });
  }
  if (l.defaultView) return map.jumpTo({ center: [l.defaultView.longitude, l.defaultView.latitude], zoom: l.defaultView.zoom });
  setStatus(`${l.name}: nothing to zoom to yet (no spatial result or default view)`);
}

/** The map bar (Fused's map controls): location search, base map, screenshot. */
function mapBar(): HTMLElement {
  const search = h('input', { id: 'map-search', placeholder: 'lat, lng · west, south, east, north · H3 cell', size: 30 }) as HTMLInputElement;
  const message = h('div', { id: 'map-search-message', class: 'error' });
  search.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    try {
      const found = parseLocation(search.value, D);
      if ('bounds' in found) {
        const [w, s, e2, n] = found.bounds;
        map.fitBounds([[w, s], [e2, n]], { duration: 0 });
      } else map.jumpTo({ center: found.center, zoom: found.zoom ?? Math.max(map.getZoom(), 12) });
      message.textContent = '';
    } catch (err) {
      message.textContent = (err as Error).message;
    }
  });
  const hasTiles = !!localStorage.getItem('tf.basemap');
  const basemap = h('select', { id: 'basemap', title: 'Base map', onchange: () => {
    localStorage.setItem('tf.basemapKind', basemap.value);
    map.setStyle(baseStyle());
  } }, ...(Object.keys(BASEMAPS) as Basemap[]).map((k) =>
    h('option', { value: k, disabled: k === 'tiles' && !hasTiles, title: k === 'tiles' && !hasTiles ? 'Set a tile URL on the Tokens page (Preferences)' : '' }, BASEMAPS[k]))) as HTMLSelectElement;
  basemap.value = basemapKind();
  return h('div', { class: 'mapbar' }, h('div', {}, search, message), basemap,
    h('button', { id: 'screenshot', title: 'Download the map as a PNG', onclick: () => downloadScreenshot() }, 'Screenshot'));
}

/** The map as drawn (base map and deck.gl layers) as a PNG data URL. */
function screenshot(): Promise<string> {
  return new Promise((resolve) => {
    // MapLibre's canvas is read during its render event, before the browser clears it;
    // deck.gl keeps its drawing buffer.
    map.once('render', () => {
      const base = map.getCanvas();
      const out = document.createElement('canvas');
      out.width = base.width;
      out.height = base.height;
      const ctx = out.getContext('2d')!;
      for (const c of document.querySelectorAll<HTMLCanvasElement>('#map canvas')) ctx.drawImage(c, 0, 0, out.width, out.height);
      resolve(out.toDataURL('image/png'));
    });
    map.triggerRepaint();
  });
}

async function downloadScreenshot() {
  const c = map.getCenter();
  const a = h('a', { href: await screenshot(), download: `map_${c.lat.toFixed(4)}_${c.lng.toFixed(4)}_z${map.getZoom().toFixed(1)}.png` }) as HTMLAnchorElement;
  a.click();
}

function setStatus(text: string) {
  const el = $('#run-status');
  if (el) el.textContent = text;
}

/** deck.gl layers for every visible UDF; the first in the list is drawn on top. */
function buildDeckLayers(deck: Deck): any[] {
  const { BitmapLayer, GeoJsonLayer, H3HexagonLayer, TileLayer } = deck;
  const out: any[] = [];
  for (const l of [...state.layers].reverse()) {
    if (!l.visible) continue;
    const { config } = parseVizConfig(l.viz);
    // deck.gl does not compare accessor functions: a new style gets new layer ids.
    const style = hashText(l.viz);
    const vectorLayer = (id: string, features: any[], extra: Record<string, unknown> = {}) => {
      const noGeometry = features.length > 0 && features.every((f) => !f.geometry);
      const spec = noGeometry && config.hexLayer ? config.hexLayer : config.vectorLayer;
      if (spec.type === 'H3HexagonLayer') return new H3HexagonLayer({ id: `${id}-h3`, data: features, ...spec.props, ...extra } as any);
      const hex = noGeometry ? h3Column(features) : null;
      if (hex) {
        // An H3 table without a hexLayer preset: hexagons styled like the vector layer.
        return new H3HexagonLayer({ id: `${id}-h3`, data: features, ...spec.props, getHexagon: (f: any) => f.properties[hex], ...extra } as any);
      }
      return new GeoJsonLayer({ id, data: features as any, ...spec.props, ...extra } as any);
    };
    if (effectiveMode(l) === 'tile') {
      const key = l.runKey ?? 0;
      out.push(
        new TileLayer({
          id: `udf-${l.id}`,
          data: `${l.id}:${key}`,
          ...config.tileLayer.props,
          maxRequests: 15,
          updateTriggers: { renderSubLayers: style },
          getTileData: async ({ index, signal }: any) => {
            if (state.frozen) return l.tileRequests?.get(`${index.z}/${index.x}/${index.y}`) ?? null;
            const result = await state.api!.run(udfDoc(l), paramValues(l), [index.x, index.y, index.z], signal);
            l.tileRequests?.set(`${index.z}/${index.x}/${index.y}`, result);
            scheduleResults();
            return result;
          },
          onViewportLoad: (tiles: any[]) => {
            if (tileTimer) {
              perf.tileViewport.push({ ms: performance.now() - tileTimer, tiles: tiles.length });
              tileTimer = 0;
            }
          },
          renderSubLayers: (props: any) => {
            const r: RunResult | null = props.data;
            if (!r) return null;
            const { west, south, east, north } = props.tile.bbox;
            if (r.kind === 'raster') return new BitmapLayer({ ...props, data: undefined, image: r.image, bounds: [west, south, east, north], ...config.rasterLayer.props } as any);
            if (r.kind === 'vector') return vectorLayer(`${props.id}-v-${style}`, r.features ?? []);
            return null;
          },
        } as any),
      );
      continue;
    }
    const r = l.result;
    if (!r || !l.drawLarge) continue;
    // Ids stay the same from run to run: deck.gl then updates the layer's data in place
    // instead of building a new layer (programs, models) for every edit.
    if (r.kind === 'vector') out.push(vectorLayer(`udf-${l.id}-${style}`, r.features ?? []));
    if (r.kind === 'raster') {
      const [w, s, e, n] = r.bounds ?? [-180, -90, 180, 90];
      out.push(new BitmapLayer({ id: `udf-${l.id}-raster-${style}`, image: r.image, bounds: [w, s, e, n], ...config.rasterLayer.props } as any));
    }
  }
  return out;
}
let tileTimer = 0;

function setFrozen(frozen: boolean) {
  state.frozen = frozen;
  ($('#freeze') as HTMLInputElement).checked = frozen;
  setStatus(frozen ? 'Frozen: edits and map moves run nothing' : 'Resumed');
  if (!frozen) {
    const l = active();
    if (l?.dirty && effectiveMode(l) === 'file') runLayer(l);
    // Tiles skipped while frozen were stored empty: load the viewport again.
    for (const t of state.layers) if (effectiveMode(t) === 'tile') t.runKey = (t.runKey ?? 0) + 1;
    updateMap();
  }
}

/** Ctrl/Cmd+K: every action by name. */
function openPalette() {
  if (document.getElementById('palette')) return;
  const commands: [string, () => void][] = [
    ['New UDF', () => { navigate('/workbench'); addLayer({}); }],
    ['Run the UDF (Shift+Enter)', () => runActive(true)],
    ['Save (Ctrl/Cmd+S)', () => saveActive()],
    ['Share…', () => openShare()],
    ['Format code (Alt+Shift+F)', () => formatActive()],
    ['Mode: File (viewport)', () => setMode('file')],
    ['Mode: Tile', () => setMode('tile')],
    ['Mode: Auto', () => setMode('auto')],
    [state.frozen ? 'Resume UDF execution' : 'Freeze UDF execution', () => setFrozen(!state.frozen)],
    ['Go to the Catalog', () => navigate('/workbench/catalog')],
    ['Go to the shared tokens', () => navigate('/workbench/tokens')],
    ['Go to the UDF Builder', () => navigate('/workbench')],
  ];
  const input = h('input', { placeholder: 'Type a command', style: 'width:100%' }) as HTMLInputElement;
  const list = h('div', {});
  const close = () => bg.remove();
  const matches = () => commands.filter(([name]) => name.toLowerCase().includes(input.value.toLowerCase()));
  const draw = () => list.replaceChildren(...matches().map(([name, run]) => h('div', { class: 'card', onclick: () => { close(); run(); } }, name)));
  input.addEventListener('input', draw);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') close();
    if (e.key === 'Enter') { const first = matches()[0]; close(); first?.[1](); }
  });
  const bg = h('div', { class: 'modal-bg', id: 'palette', onclick: (e: Event) => e.target === bg && close() }, h('div', { class: 'modal' }, input, list));
  document.body.append(bg);
  draw();
  input.focus();
}

// Formatting runs Black on the server, through the same run route as any UDF (a worker has
// the Python tooling; the browser does not).
const FORMATTER = `@fused.udf
def udf(src: str, line_length: int = 80):
    import black
    return {"code": black.format_str(src, mode=black.Mode(line_length=line_length))}
`;

async function formatActive() {
  const l = active();
  if (!l || !state.api) return;
  const tab = state.tab === 'utils' ? 'utils' : 'code';
  const source = tab === 'utils' ? l.utils : l.code;
  const result = await state.api.run({ name: 'format', code: FORMATTER }, { src: source, line_length: 80 }, null);
  const formatted = (result.json as any)?.code;
  if (result.kind !== 'json' || typeof formatted !== 'string') {
    setStatus(`Format: ${result.error?.traceback?.trim().split('\n').pop() ?? result.error?.message ?? 'failed'}`);
    return;
  }
  if (formatted === source) return setStatus('Format: already formatted');
  editors[tab].dispatch({ changes: { from: 0, to: editors[tab].state.doc.length, insert: formatted } });
  setStatus('Formatted with Black');
}

function setMode(mode: Mode) {
  const l = active();
  if (!l) return;
  l.mode = mode;
  l.dirty = true;
  ($('#mode') as HTMLSelectElement).value = mode;
  runActive(true);
  renderLayerList();
  persist();
}

function hashText(text: string): string {
  let h = 5381;
  for (let i = 0; i < text.length; i++) h = (h * 33) ^ text.charCodeAt(i);
  return (h >>> 0).toString(36);
}
(window as any).__reloadTiles = () => {
  // For the e2e test: re-key every Tile layer (same code: the server answers from cache)
  // and time until the viewport's tiles are drawn.
  tileTimer = performance.now();
  for (const l of state.layers) if (effectiveMode(l) === 'tile') l.runKey = (l.runKey ?? 0) + 1;
  updateMap();
};

function updateMap() {
  if (!overlay || !D) return;  // attachOverlay draws the layers
  try {
    overlay.setProps({ layers: buildDeckLayers(D) });
  } catch (e) {
    setStatus(`Visualize: ${(e as Error).message}`);
  }
}

let resultsTimer: number | undefined;
function scheduleResults() {
  clearTimeout(resultsTimer);
  resultsTimer = window.setTimeout(renderResults, 100);
}

function renderResults() {
  const l = active();
  const body = $('#results-body');
  if (!l || !body) return;
  for (const b of document.querySelectorAll('#results-tabs button')) b.classList.toggle('on', (b as HTMLElement).dataset.tab === state.resultsTab);
  const tile = effectiveMode(l) === 'tile';
  const runs = tile ? [...(l.tileRequests?.values() ?? [])] : l.result ? [l.result] : [];
  const last = runs[runs.length - 1];
  const viz = parseVizConfig(l.viz);
  // The status line: timing and cache per run.
  if (last) {
    const m = last.metadata;
    const avg = runs.reduce((a, r) => a + (r.metadata.ms ?? 0), 0) / runs.length;
    setStatus(
      last.kind === 'error'
        ? `Error · ${last.error?.message?.slice(0, 80)}`
        : tile
          ? `${runs.length} tiles · avg ${avg.toFixed(0)} ms · ${runs.filter((r) => r.metadata.cache?.includes('hit')).length} cached`
          : `${(m.ms ?? 0).toFixed(0)} ms server · ${last.clientMs.toFixed(0)} ms total · cache ${m.cache ?? '-'}${m.rows !== undefined ? ` · ${m.rows} rows` : ''}`,
    );
  } else setStatus(tile ? 'Tile mode: tiles load as the map moves' : 'Ready');

  let content: HTMLElement;
  switch (state.resultsTab) {
    case 'stdout': {
      const parts: HTMLElement[] = [];
      if (viz.error) parts.push(h('pre', { class: 'error' }, `Visualize: ${viz.error}`));
      if (last?.metadata.cache?.includes('hit')) parts.push(h('pre', { class: 'followup' }, 'This result was cached.'));
      if (last?.kind === 'error') {
        const e = last.error!;
        parts.push(h('pre', { id: 'stdout-text' }, e.stdout ?? ''), h('pre', { class: 'error', id: 'traceback' }, [e.message, e.traceback, e.stderr].filter(Boolean).join('\n')));
      } else if (last) {
        parts.push(h('pre', { id: 'stdout-text' }, (last.metadata.stdout ?? '') + (last.metadata.stderr ? `\n${last.metadata.stderr}` : '')));
        if (!l.drawLarge && !tile) {
          parts.push(h('div', { class: 'row' }, `The result is large (${(last.bytes / 1e6).toFixed(0)} MB).`,
            h('button', { onclick: () => { l.drawLarge = true; updateMap(); renderResults(); } }, 'Draw it anyway')));
        }
        if (last.kind === 'html') parts.push(h('iframe', { sandbox: '', srcdoc: last.text ?? '', style: 'width:100%;height:300px;border:0' }));
      }
      content = h('div', {}, ...parts);
      break;
    }
    case 'selected':
      content = h('pre', { id: 'selected-text' }, state.selected ? JSON.stringify(state.selected, null, 2) : 'Click a feature on the map.');
      break;
    case 'request': {
      const details = tile
        ? [...(l.tileRequests?.entries() ?? [])].map(([k, r]) => ({ tile: k, bounds: tileBounds(k), ms: r.metadata.ms, cache: r.metadata.cache, status: r.status }))
        : last ? { ...last.request, udf: { name: l.name }, status: last.status, server_ms: last.metadata.ms, client_ms: last.clientMs, cache: last.metadata.cache, bytes: last.bytes } : {};
      content = h('pre', { id: 'request-text' }, JSON.stringify(details, null, 2));
      break;
    }
    case 'table':
      content = renderTable(last);
      break;
  }
  body.replaceChildren(content);
}

function tileBounds(key: string): number[] {
  const [z, x, y] = key.split('/').map(Number);
  const lng = (xx: number) => (xx / 2 ** z) * 360 - 180;
  const lat = (yy: number) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * yy) / 2 ** z))) * 180) / Math.PI;
  return [lng(x), lat(y + 1), lng(x + 1), lat(y)];
}

function renderTable(r: RunResult | undefined): HTMLElement {
  let rows: Record<string, unknown>[] = [];
  if (r?.kind === 'vector') rows = (r.features ?? []).map((f) => f.properties ?? {});
  else if (r?.kind === 'json') {
    const j = r.json as any;
    rows = Array.isArray(j) ? j.map((x) => (x && typeof x === 'object' ? x : { value: x })) : j && typeof j === 'object' ? [j] : [{ value: j }];
  }
  if (!rows.length) return h('pre', {}, 'No table.');
  const cols = [...new Set(rows.slice(0, 100).flatMap((x) => Object.keys(x)))];
  const cell = (v: unknown) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v ?? ''));
  return h(
    'table',
    { id: 'result-table' },
    h('tr', {}, ...cols.map((c) => h('th', {}, c))),
    ...rows.slice(0, 500).map((x) => h('tr', {}, ...cols.map((c) => h('td', {}, cell(x[c]))))),
  );
}

// ---------------------------------------------------------------------------------------
// Save and share

function udfType(l: Layer): string {
  return l.mode === 'tile' ? 'vector_tile' : l.mode === 'file' ? 'vector_single' : 'auto';
}

async function saveActive(): Promise<boolean> {
  const l = active();
  if (!l || !state.api) return false;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(l.name)) {
    setStatus('Save: the name must be letters, digits, _ . - (and not empty)');
    return false;
  }
  let viz: unknown = l.viz;
  try {
    viz = JSON.parse(l.viz);
  } catch {
    /* kept as text */
  }
  const center = map.getCenter();
  try {
    const saved = await state.api.saveUdf({
      ...udfDoc(l),
      metadata: {
        'fused:name': l.name,
        'fused:udfType': udfType(l),
        'fused:vizConfig': viz,
        'fused:defaultViewState': l.defaultView ?? { enable: true, latitude: center.lat, longitude: center.lng, zoom: map.getZoom() },
      },
    });
    l.saved = true;
    l.dirty = false;
    l.owner = saved.owner;
    renderLayerList();
    persist();
    setStatus(`Saved ${saved.owner}/${saved.name}`);
    return true;
  } catch (e) {
    setStatus(`Save failed: ${(e as Error).message}`);
    return false;
  }
}

async function openShare() {
  const l = active();
  if (!l || !state.api) return;
  if ((l.dirty || !l.saved) && !(await saveActive())) return;
  const api = state.api;
  const close = () => bg.remove();
  const scope = h('select', { id: 'share-scope' }, h('option', { value: 'public' }, 'Public (anyone with the link)'), h('option', { value: 'team' }, 'Team (needs an API token)')) as HTMLSelectElement;
  const cache = h('input', { type: 'checkbox', id: 'share-cache', checked: true }) as HTMLInputElement;
  const ttl = h('input', { id: 'share-ttl', placeholder: 'e.g. 12h (default 90d)', size: 14 }) as HTMLInputElement;
  const code = h('input', { type: 'checkbox', id: 'share-code' }) as HTMLInputElement;
  const out = h('div', { id: 'share-out' });
  const existing = h('div', {});
  const mode = effectiveMode(l);

  const showSnippets = (token: string) => {
    const names = new Set(parseParams(l.code).map((p) => p.name));
    const params = Object.fromEntries(Object.entries(l.params).filter(([k, v]) => v !== '' && names.has(k)));
    const all = snippets({ baseUrl: api.baseUrl, token, mode, params });
    const pre = h('pre', { id: 'snippet' });
    const pick = (name: string) => {
      pre.textContent = all[name as keyof typeof all];
      pre.dataset.name = name;
      for (const b of out.querySelectorAll('.tabs button')) b.classList.toggle('on', (b as HTMLElement).dataset.tab === name);
    };
    const link = `${location.origin}/workbench/shared/${token}?mode=${mode}`;
    out.replaceChildren(
      h('p', {}, 'Token: ', h('code', { id: 'share-token' }, token)),
      h('p', {}, 'Read-only map: ', h('a', { id: 'share-link', href: link, target: '_blank' }, link)),
      h('div', { class: 'tabs' }, ...SNIPPET_NAMES.map((n) => h('button', { 'data-tab': n, onclick: () => pick(n) }, n))),
      pre,
      h('button', { onclick: () => navigator.clipboard?.writeText(pre.textContent ?? '') }, 'Copy'),
    );
    pick('curl');
  };
  const refresh = async () => {
    const tokens = (await api.listTokens()).filter((t) => t.udf === l.name);
    existing.replaceChildren(
      ...tokens.map((t) =>
        h('div', { class: 'card' }, h('code', { class: 'grow' }, t.token), `${t.scope}${t.cache ? '' : ' · no cache'}${t.include_code ? ' · code' : ''}`,
          h('button', { onclick: () => showSnippets(t.token) }, 'Snippets'),
          h('button', { onclick: async () => { await api.revokeToken(t.token); refresh(); out.replaceChildren(); } }, 'Revoke'))),
    );
  };
  const create = async () => {
    try {
      const t = await api.createToken({ udf: l.name, scope: scope.value as 'public' | 'team', cache: cache.checked, include_code: code.checked, cache_max_age: ttl.value.trim() || null });
      showSnippets(t.token);
      refresh();
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error' }, `Failed to create share token: ${(e as Error).message}`));
    }
  };
  const bg = h(
    'div',
    { class: 'modal-bg', onclick: (e: Event) => e.target === bg && close() },
    h('div', { class: 'modal', id: 'share-modal' },
      h('h3', {}, `Share ${l.name}`),
      h('div', { class: 'row' }, scope, h('label', {}, cache, ' cache results'), 'TTL', ttl, h('label', {}, code, ' include code')),
      h('div', { class: 'row' }, h('button', { class: 'primary', id: 'create-token', onclick: create }, 'Create token'), h('button', { onclick: close }, 'Close')),
      existing,
      out),
  );
  document.body.append(bg);
  refresh();
}

// ---------------------------------------------------------------------------------------
// Catalog and tokens pages

async function openSaved(owner: string, name: string) {
  const doc = await state.api!.getUdf(owner, name);
  const meta = (doc.metadata ?? {}) as Record<string, any>;
  const viz = meta['fused:vizConfig'];
  const type = meta['fused:udfType'];
  const view = meta['fused:defaultViewState'];
  const existing = state.layers.find((l) => l.name === name && l.owner === owner);
  if (existing) state.layers = state.layers.filter((l) => l !== existing);
  addLayer({
    name,
    owner,
    code: doc.code,
    utils: doc.headers?.[0]?.source_code ?? '',
    utilsName: doc.headers?.[0]?.module_name,
    viz: viz ? (typeof viz === 'string' ? viz : JSON.stringify(viz, null, 2)) : DEFAULT_VIZ_TEXT,
    mode: type === 'vector_tile' || type === 'raster' ? 'tile' : type === 'vector_single' || type === 'vector_single_none' ? 'file' : 'auto',
    defaultView: view && typeof view === 'object' && view.latitude !== undefined ? view : undefined,
    saved: true,
    dirty: false,
  });
}

async function renderCatalog() {
  const list = h('div', { id: 'catalog-list' });
  const search = h('input', { id: 'catalog-search', placeholder: 'Search UDFs', oninput: () => draw() }) as HTMLInputElement;
  const importer = h('input', { type: 'file', id: 'catalog-import', multiple: true, accept: '.py,.json,.zip', onchange: () => importFiles(importer.files) }) as HTMLInputElement;
  const folder = h('input', { type: 'file', webkitdirectory: true, onchange: () => importFiles(folder.files) }) as HTMLInputElement;
  const github = h('input', { id: 'catalog-github', size: 60, placeholder: 'https://github.com/<owner>/<repo>/tree/<ref>/<folder>' }) as HTMLInputElement;
  const message = h('div', { id: 'catalog-message' });
  const addGithub = async () => {
    const url = github.value.trim();
    if (!url) return;
    message.replaceChildren(h('p', {}, `Fetching ${url}…`));
    try {
      const saved = await state.api!.importGithub(url);
      await openSaved(saved.owner, saved.name);
      navigate('/workbench');
    } catch (e) {
      message.replaceChildren(h('p', { class: 'error' }, `Add from GitHub failed: ${(e as Error).message}`));
    }
  };
  shell('catalog', h('div', { class: 'page' }, h('h2', {}, 'Catalog'),
    h('div', { class: 'row' }, search, h('label', {}, 'Import .py, .zip or meta.json: ', importer), h('label', {}, 'Import a folder: ', folder)),
    h('div', { class: 'row' }, h('label', {}, 'Add from a GitHub URL: ', github),
      h('button', { id: 'catalog-github-add', onclick: addGithub }, 'Add from GitHub')),
    message, list));
  const udfs = await state.api!.listUdfs();
  function draw() {
    const q = search.value.toLowerCase();
    list.replaceChildren(
      ...udfs
        .filter((u) => u.name.toLowerCase().includes(q))
        .map((u) =>
          h('div', { class: 'card', 'data-name': u.name }, h('b', { class: 'grow' }, u.name), u.public ? 'example / public' : 'saved', ` · ${u.owner}`,
            h('button', { onclick: async () => { await openSaved(u.owner, u.name); navigate('/workbench'); } }, 'Open'),
            u.owner === state.owner ? h('button', { onclick: async () => {
              if (!confirm(`Delete the saved UDF '${u.name}'?`)) return;
              await state.api!.deleteUdf(u.owner, u.name);
              renderCatalog();
            } }, 'Delete') : null)),
    );
    if (!list.children.length) list.append(h('p', {}, 'No UDFs yet: save one from the UDF Builder (Ctrl/Cmd+S).'));
  }
  draw();
}

/** Imports UDF folders (meta.json + code + header modules), their .zip, or loose .py files. */
async function importFiles(files: FileList | null) {
  if (!files?.length) return;
  const texts = new Map<string, string>();  // path → text
  try {
    for (const f of Array.from(files)) {
      if (f.name.endsWith('.zip')) {
        for (const [path, bytes] of await readZip(await f.arrayBuffer())) texts.set(path, new TextDecoder().decode(bytes));
      } else texts.set((f as any).webkitRelativePath || f.name, await f.text());
    }
    const metas = [...texts.keys()].filter((p) => p.split('/').pop() === 'meta.json');
    for (const metaPath of metas) {
      const dir = metaPath.slice(0, metaPath.length - 'meta.json'.length);
      const doc = JSON.parse(texts.get(metaPath)!);
      const udf = doc.job_config?.steps?.[0]?.udf ?? doc.udf ?? doc;
      const code = udf.code ?? texts.get(dir + (udf.source ?? `${udf.name}.py`));
      if (!code) throw new Error(`${metaPath}: no code (expected ${udf.source ?? `${udf.name}.py`} beside it)`);
      const header = udf.headers?.[0];
      const viz = udf.metadata?.['fused:vizConfig'];
      const type = udf.metadata?.['fused:udfType'];
      addLayer({
        name: uniqueName(udf.name ?? 'imported'),
        code,
        utils: header ? header.source_code ?? texts.get(dir + (header.source_file ?? `${header.module_name}.py`)) ?? '' : '',
        utilsName: header?.module_name,
        viz: viz ? (typeof viz === 'string' ? viz : JSON.stringify(viz, null, 2)) : DEFAULT_VIZ_TEXT,
        mode: type === 'vector_tile' || type === 'raster' ? 'tile' : type === 'vector_single' || type === 'vector_single_none' ? 'file' : 'auto',
      });
    }
    if (!metas.length) {
      for (const [path, text] of texts) if (path.endsWith('.py')) addLayer({ name: uniqueName(path.split('/').pop()!.replace(/\.py$/, '')), code: text });
    }
  } catch (e) {
    alert(`Import failed: ${(e as Error).message}`);
    return;
  }
  navigate('/workbench');
}

/** File Explorer: browse fd://, upload, download, delete, copy path, sign, open as a UDF. */
async function renderFiles(dir: string) {
  const api = state.api!;
  const list = h('div', { id: 'files-list' });
  const pathInput = h('input', { id: 'files-path', value: dir, size: 60 }) as HTMLInputElement;
  const message = h('div', { id: 'files-message' });
  const upload = h('input', { type: 'file', id: 'files-upload', multiple: true, onchange: async () => {
    try {
      for (const f of Array.from(upload.files ?? [])) await api.uploadFile(dir.replace(/\/?$/, '/') + f.name, f);
      renderFiles(dir);
    } catch (e) {
      message.replaceChildren(h('p', { class: 'error' }, (e as Error).message));
    }
  } }) as HTMLInputElement;
  const go = (to: string) => { history.replaceState(null, '', `/workbench/files?path=${encodeURIComponent(to)}`); renderFiles(to); };
  const preview = h('div', { id: 'files-preview' });
  shell('files', h('div', { class: 'page' }, h('h2', {}, 'Files'),
    h('div', { class: 'row' },
      h('button', { onclick: () => go(parentUrl(dir)) }, '↑ Up'),
      pathInput, h('button', { onclick: () => go(pathInput.value.trim() || 'fd://') }, 'Open'),
      h('label', {}, 'Upload: ', upload)),
    message, list, preview));
  let entries: FileEntry[];
  try {
    entries = (await api.listFiles(dir)).files;
  } catch (e) {
    const missing = e instanceof ApiError && e.status === 404 && /No route/.test(e.message);
    message.replaceChildren(h('p', { class: 'error' }, missing ? 'This server has no files API (the storage routes).' : (e as Error).message));
    return;
  }
  const open = (f: FileEntry) => {
    const t = readerTemplate(f.url);
    addLayer({ name: uniqueName(t.name), code: t.code });
    navigate('/workbench');
  };
  // An ingested table opens as a Tile-mode UDF that reads only the chunks in view.
  const openTable = (url: string) => {
    const t = tableTemplate(url);
    addLayer({ name: uniqueName(t.name), code: t.code, mode: 'tile' });
    navigate('/workbench');
  };
  const openTableDir = async (f: FileEntry) => {
    try {
      if (isIngestedTable((await api.listFiles(f.url)).files)) return openTable(f.url);
      message.replaceChildren(h('p', { class: 'error' }, `${f.url} is not an ingested table (it has no _sample): open its files one by one`));
    } catch (e) {
      message.replaceChildren(h('p', { class: 'error' }, (e as Error).message));
    }
  };
  if (isIngestedTable(entries)) {
    message.replaceChildren(h('p', {}, 'This folder is an ingested table. ',
      h('button', { id: 'files-open-table', onclick: () => openTable(dir) }, 'Open on the map (reads the chunks in view)')));
  }
  const showImage = async (f: FileEntry) => {
    const img = h('img', { style: 'max-width:100%;max-height:60vh' }) as HTMLImageElement;
    img.src = URL.createObjectURL(await api.downloadFile(f.url));
    preview.replaceChildren(h('h4', {}, f.name), img);
  };
  list.replaceChildren(
    ...entries.map((f) =>
      h('div', { class: 'card', 'data-url': f.url },
        h('span', { class: 'grow' }, f.is_directory
          ? h('a', { href: '#', onclick: (e: Event) => { e.preventDefault(); go(f.url); } }, `📁 ${f.name}`)
          : f.name),
        f.is_directory ? '' : formatSize(f.size),
        f.is_directory
          ? h('button', { class: 'open-table', title: 'New Tile UDF over this ingested table: each tile reads only the chunks it meets', onclick: () => openTableDir(f) }, 'Open table')
          : h('button', { class: 'open-udf', title: 'New UDF that reads this file (preview on the map / as a table)', onclick: () => open(f) }, 'Open as UDF'),
        /\.(png|jpe?g|gif|webp)$/i.test(f.name) ? h('button', { onclick: () => showImage(f) }, 'Preview') : null,
        h('button', { title: 'Copy path', onclick: () => navigator.clipboard?.writeText(f.url) }, 'Copy path'),
        f.is_directory ? null : h('button', { onclick: async () => {
          const a = h('a', { download: f.name }) as HTMLAnchorElement;
          a.href = URL.createObjectURL(await api.downloadFile(f.url));
          a.click();
        } }, 'Download'),
        f.is_directory ? null : h('button', { class: 'sign', onclick: async () => {
          const signed = await api.signUrl(f.url);
          message.replaceChildren(h('p', {}, 'Signed URL (1 hour): ', h('code', { id: 'signed-url' }, new URL(signed.url, location.origin).href)));
        } }, 'Signed URL'),
        h('button', { onclick: async () => {
          if (!confirm(`Delete ${f.url}?`)) return;
          await api.deleteFile(f.url);
          renderFiles(dir);
        } }, 'Delete'))),
  );
  if (!entries.length) list.append(h('p', {}, 'Empty. Upload files here, or write them from a UDF.'));
}

let jobTail = 0;  // bumps to stop an earlier job's log tail

/** Jobs: the caller's batch jobs with status and task counts; one job's live logs and cancel. */
async function renderJobs(selected?: string) {
  // A delayed refresh (after a cancel) must not pull the user back from another page.
  if (!location.pathname.replace(/\/+$/, '').endsWith('/jobs')) return;
  const api = state.api!;
  const list = h('div', { id: 'jobs-list' });
  const detail = h('div', { id: 'job-detail' });
  shell('jobs', h('div', { class: 'page' }, h('h2', {}, 'Jobs'), h('button', { id: 'jobs-refresh', onclick: () => renderJobs(selected) }, 'Refresh'), list, detail));
  let jobs: any[];
  try {
    jobs = await api.listJobs();
  } catch (e) {
    const missing = e instanceof ApiError && e.status === 404 && /No route/.test(e.message);
    list.replaceChildren(h('p', { class: 'error' }, missing ? 'This server has no batch jobs API (the jobs routes).' : (e as Error).message));
    return;
  }
  const counts = (j: any) => Object.entries(j.tasks ?? {}).map(([k, v]) => `${v} ${k}`).join(', ');
  list.replaceChildren(
    ...jobs.map((j) =>
      h('div', { class: 'card', 'data-job': j.id },
        h('a', { href: '#', class: 'grow', onclick: (e: Event) => { e.preventDefault(); renderJobs(j.id); } }, `${j.name || j.id}`),
        h('span', { class: 'job-status' }, j.status), `${j.num_tasks} tasks${counts(j) ? ` (${counts(j)})` : ''}`,
        new Date(j.created_ms).toLocaleString(),
        ['queued', 'running'].includes(j.status) ? h('button', { class: 'cancel', onclick: async () => {
          await api.cancelJob(j.id);
          renderJobs(selected);
          setTimeout(() => renderJobs(selected), 1500);  // running tasks take a moment to stop
        } }, 'Cancel') : null)),
  );
  if (!jobs.length) list.append(h('p', {}, 'No jobs yet: start one with fused.submit(...) or udf(arg_list=...).run_remote().'));
  if (!selected) return;
  const job = await api.getJob(selected);
  const logs = h('pre', { id: 'job-logs' });
  detail.replaceChildren(h('h3', {}, `${job.name || job.id}: `, h('span', { id: 'job-status' }, job.status)),
    h('div', {}, (job.task_list ?? []).map((t: any) => `#${t.index} ${t.status}${t.error ? `: ${t.error}` : ''}`).join(' · ')),
    h('h4', {}, 'Logs (live)'), logs);
  // Live logs: long-poll the tail until the job ends or another job is shown.
  const mine = ++jobTail;
  let after = 0;
  for (;;) {
    const tail = await api.tailJobLogs(selected, after, 10).catch(() => null);
    if (!tail || mine !== jobTail || !document.body.contains(logs)) return;
    for (const line of tail.lines) {
      logs.append(`${line.task >= 0 ? `[task ${line.task}] ` : ''}${line.text}\n`);
      after = Math.max(after, line.id);
    }
    $('#job-status', detail).textContent = tail.status;
    if (!['queued', 'running'].includes(tail.status) && !tail.lines.length) return;
  }
}

async function renderTokens() {
  const list = h('div', { id: 'tokens-list' });
  const basemap = h('input', { id: 'basemap-url', size: 60, placeholder: 'https://tiles.example.com/{z}/{x}/{y}.png', value: localStorage.getItem('tf.basemap') ?? '' }) as HTMLInputElement;
  shell('tokens', h('div', { class: 'page' }, h('h2', {}, 'Shared tokens'), list,
    h('h3', {}, 'Preferences'),
    h('div', { class: 'row' }, 'Base map tiles (XYZ raster URL, empty = the offline map):', basemap,
      h('button', { onclick: () => { basemap.value.trim() ? localStorage.setItem('tf.basemap', basemap.value.trim()) : localStorage.removeItem('tf.basemap'); localStorage.removeItem('tf.basemapKind'); map?.setStyle(baseStyle()); } }, 'Apply')),
    h('div', { class: 'row' }, h('button', { onclick: () => { localStorage.removeItem('tf.token'); state.api = null; route(); } }, 'Sign out'))));
  const tokens = await state.api!.listTokens();
  list.replaceChildren(
    ...tokens.map((t) =>
      h('div', { class: 'card' }, h('code', { class: 'grow' }, t.token), `${t.udf} · ${t.scope}${t.cache ? '' : ' · no cache'}${t.cache_max_age ? ` · ttl ${t.cache_max_age}s` : ''}${t.include_code ? ' · code' : ''}`,
        h('button', { onclick: async () => { await state.api!.revokeToken(t.token); renderTokens(); } }, 'Revoke'))),
  );
  if (!tokens.length) list.append(h('p', {}, 'No shared tokens: create one with Share in the UDF Builder.'));
}

// ---------------------------------------------------------------------------------------

(async () => {
  const shared = /\/workbench\/shared\/([^/]+)/.exec(location.pathname);
  if (shared) {
    const mode = new URLSearchParams(location.search).get('mode') === 'tile' ? 'tile' : 'file';
    return import('./shared').then((m) => m.renderShared(decodeURIComponent(shared[1]), mode, baseStyle()));
  }
  performance.mark('tf:main');  // first-load marks, read by the e2e test
  const token = tokenFromUrl() ?? localStorage.getItem('tf.token');
  if (token && (await signIn(token))) {
    performance.mark('tf:signed-in');
    route();
    performance.mark('tf:shown');
  }
  else if (!token) renderSignIn();
})();
