import { describe, expect, it } from 'vitest';
import { formatSize, parentUrl, readerTemplate } from './files';
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
