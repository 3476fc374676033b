import { describe, expect, it } from 'vitest';
import * as h3 from 'h3-js';
import { basemapStyle, featuresBounds, parseLocation } from './mapcontrols';

describe('parseLocation', () => {
  it('reads lat, lng (and an optional zoom) as Google Maps writes them', () => {
    expect(parseLocation('37.77, -122.42')).toEqual({ center: [-122.42, 37.77] });
    expect(parseLocation(' 48.8584 2.2945 15 ')).toEqual({ center: [2.2945, 48.8584], zoom: 15 });
  });
  it('accepts lng, lat when only that order is valid', () => {
    expect(parseLocation('-122.42, 37.77')).toEqual({ center: [-122.42, 37.77] });
  });
  it('reads a box west, south, east, north', () => {
    expect(parseLocation('-122.5,37.7,-122.3,37.85')).toEqual({ bounds: [-122.5, 37.7, -122.3, 37.85] });
    expect(() => parseLocation('-122.3,37.7,-122.5,37.85')).toThrow(/not a box: expected west < east/);
  });
  it('finds an H3 cell', () => {
    const cell = h3.latLngToCell(37.77, -122.42, 9);
    const found = parseLocation(cell, h3) as { center: number[]; zoom: number };
    expect(found.center[0]).toBeCloseTo(-122.42, 2);
    expect(found.center[1]).toBeCloseTo(37.77, 2);
    expect(found.zoom).toBe(12);
    expect(() => parseLocation('8928308280fffff'.replace('8', '0'), h3)).toThrow(/not a valid H3 cell id/);
    expect(() => parseLocation(cell)).toThrow(/still loading/);
  });
  it('names what is wrong', () => {
    expect(() => parseLocation('Paris')).toThrow(/'Paris' is not a location: offline.*no address geocoder/);
    expect(() => parseLocation('95, 200')).toThrow(/out of range: latitude must be in \[-90, 90\]/);
    expect(() => parseLocation('37.7, -122.4, 30')).toThrow(/zoom 30 is out of range/);
    expect(() => parseLocation('')).toThrow(/Type coordinates/);
  });
});

describe('basemapStyle', () => {
  it('draws the offline land in light or dark colours', () => {
    const light = basemapStyle('light', null);
    const dark = basemapStyle('dark', null);
    expect(light.layers.map((l) => l.id)).toEqual(['ocean', 'land', 'coast']);
    expect((dark.layers[0] as any).paint['background-color']).not.toEqual((light.layers[0] as any).paint['background-color']);
  });
  it('blank has no source at all', () => {
    const blank = basemapStyle('blank', 'http://tiles/{z}/{x}/{y}.png');
    expect(blank.sources).toEqual({});
    expect(blank.layers).toHaveLength(1);
  });
  it('custom tiles go over the land, and only when a tile URL is set', () => {
    expect(basemapStyle('tiles', 'http://t/{z}/{x}/{y}.png').layers.at(-1)).toMatchObject({ id: 'custom', type: 'raster' });
    expect(basemapStyle('tiles', null).layers.map((l) => l.id)).toEqual(['ocean', 'land', 'coast']);
  });
});

describe('featuresBounds', () => {
  it('spans every coordinate, and is null without geometry', () => {
    const box = { type: 'Polygon', coordinates: [[[-1, -2], [3, -2], [3, 4], [-1, 4], [-1, -2]]] };
    expect(featuresBounds([{ geometry: box }, { geometry: { type: 'Point', coordinates: [5, 1] } }])).toEqual([-1, -2, 5, 4]);
    expect(featuresBounds([{ properties: {} }])).toBeNull();
  });
});
