import { describe, expect, it } from 'vitest';
import { formatSize, isIngestedTable, parentUrl, readerTemplate, tableTemplate } from './files';
import { parseParams } from './params';

describe('readerTemplate', () => {
  it('reads each format with the usual reader and takes the path as a parameter', () => {
    const csv = readerTemplate('fd://demo/ais data.csv');
    expect(csv.name).toBe('Read_ais_data');
    expect(csv.code).toContain('pd.read_csv(io.BytesIO(data))');
    expect(csv.code).toContain('data = fused.api.get(path)');
    expect(parseParams(csv.code)).toEqual([{ name: 'path', type: 'str', default: '"fd://demo/ais data.csv"' }]);
    expect(readerTemplate('fd://x/t.parquet').code).toContain('gpd.read_parquet(io.BytesIO(data))');
    expect(readerTemplate('fd://x/roads.geojson').code).toContain('gpd.read_file(io.BytesIO(data))');
    expect(readerTemplate('fd://x/notes.bin').code).toContain('first_bytes');
  });
});

describe('tableTemplate', () => {
  it('opens an ingested table as a tile UDF reading by bounds', () => {
    const t = tableTemplate('fd://ais/ingested');
    expect(t.name).toBe('Table_ingested');
    expect(t.code).toContain('return fused.read_table(path, bounds)');
    expect(parseParams(t.code)[0]).toMatchObject({ name: 'bounds', type: 'bounds' });
    expect(parseParams(t.code)[1]).toEqual({ name: 'path', type: 'str', default: '"fd://ais/ingested/"' });
  });
  it('knows a table by its _sample index', () => {
    const file = (name: string, is_directory = false) => ({ url: `fd://t/${name}`, name, size: 1, is_directory });
    expect(isIngestedTable([file('0.parquet'), file('_sample')])).toBe(true);
    expect(isIngestedTable([file('0.parquet'), file('_sample', true)])).toBe(false);
    expect(isIngestedTable([])).toBe(false);
  });
});

describe('paths and sizes', () => {
  it('walks up directories and prints sizes', () => {
    expect(parentUrl('fd://a/b/')).toBe('fd://a/');
    expect(parentUrl('fd://a/')).toBe('fd://');
    expect(parentUrl('fd://')).toBe('fd://');
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(1536)).toBe('1.5 KB');
    expect(formatSize(5 * 1024 * 1024)).toBe('5.0 MB');
  });
});
