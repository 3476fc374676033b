// File Explorer helpers: the files API of the storage work (/server/v1/files/...) and the
// reader templates that open a file as a new UDF (Fused's "create UDF from file").

export interface FileEntry {
  url: string;
  name: string;
  size: number;
  last_modified_ms?: number;
  is_directory: boolean;
}

const EXT = /\.([A-Za-z0-9]+)$/;

/** The UDF that reads `url`, by its extension (Fused's best-guess catalog reader). */
export function readerTemplate(url: string): { name: string; code: string } {
  const ext = (EXT.exec(url)?.[1] ?? '').toLowerCase();
  const stem = url.replace(/\/+$/, '').split('/').pop()!.replace(EXT, '').replace(/[^A-Za-z0-9_]/g, '_') || 'file';
  const read: Record<string, string> = {
    csv: 'pd.read_csv(io.BytesIO(data))',
    tsv: 'pd.read_csv(io.BytesIO(data), sep="\\t")',
    parquet: 'read_parquet(data)',
    geojson: 'gpd.read_file(io.BytesIO(data))',
    json: 'gpd.read_file(io.BytesIO(data))',
    gpkg: 'gpd.read_file(io.BytesIO(data))',
    kml: 'gpd.read_file(io.BytesIO(data))',
    zip: 'gpd.read_file(io.BytesIO(data))',
    xlsx: 'pd.read_excel(io.BytesIO(data))',
  };
  const expr = read[ext] ?? 'pd.DataFrame({"first_bytes": [data[:200]]})';
  const helper =
    ext === 'parquet'
      ? `
    def read_parquet(data):
        try:
            return gpd.read_parquet(io.BytesIO(data))  # GeoParquet
        except Exception:
            return pd.read_parquet(io.BytesIO(data))
`
      : '';
  const code = `@fused.udf
def udf(path: str = ${JSON.stringify(url)}):
    import io
    import geopandas as gpd
    import pandas as pd
${helper}
    data = fused.api.get(path)
    df = ${expr}
    print(df)
    return df
`;
  return { name: `Read_${stem}`.slice(0, 60), code: code.replace('\n\n\n', '\n\n') };
}

/** A Tile-mode UDF over an ingested table (a directory with `_sample`): each tile reads only
 *  the chunks whose box meets it (fused.read_table prunes them in the engine). */
export function tableTemplate(url: string): { name: string; code: string } {
  const dir = url.replace(/\/*$/, '/');
  const stem = dir.replace(/\/+$/, '').split('/').pop()!.replace(/[^A-Za-z0-9_]/g, '_') || 'table';
  const code = `@fused.udf
def udf(bounds: fused.types.Bounds = None, path: str = ${JSON.stringify(dir)}):
    # Only the chunks that meet this tile are read, then rows are filtered by geometry.
    return fused.read_table(path, bounds)
`;
  return { name: `Table_${stem}`.slice(0, 60), code };
}

/** Whether a directory listing is an ingested table's (it has the `_sample` index). */
export function isIngestedTable(entries: FileEntry[]): boolean {
  return entries.some((e) => !e.is_directory && e.name === '_sample');
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** The parent of a directory URL: fd://a/b/ → fd://a/; fd:// stays. */
export function parentUrl(url: string): string {
  const m = /^([a-z]+:\/\/)(.*)$/.exec(url);
  if (!m) return url;
  const parts = m[2].split('/').filter(Boolean);
  parts.pop();
  return m[1] + (parts.length ? parts.join('/') + '/' : '');
}
