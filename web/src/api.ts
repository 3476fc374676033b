// The workbench's only door to terrafused: the /server/v1 JSON API with the private token.

export const API = '/server/v1';

export interface UdfDoc {
  name: string;
  code: string;
  entrypoint?: string;
  headers?: { module_name: string; source_code: string }[];
  metadata?: Record<string, unknown>;
}

export interface SavedUdf {
  owner: string;
  name: string;
  version: string;
  public: boolean;
  updated_at?: string;
}

export interface TokenDoc {
  token: string;
  owner: string;
  udf: string;
  enabled: boolean;
  cache: boolean;
  cache_max_age: number | null;
  scope: 'public' | 'team';
  include_code: boolean;
}

export interface RunMetadata {
  stdout?: string;
  stderr?: string;
  cache?: string;
  ms?: number;
  udf_seconds?: number;
  rows?: number;
  bounds?: number[];
}

export interface RunResult {
  kind: 'vector' | 'raster' | 'json' | 'html' | 'none' | 'error';
  status: number;
  features?: any[];
  image?: ImageBitmap;
  bounds?: number[];
  json?: unknown;
  text?: string;
  metadata: RunMetadata;
  error?: { message: string; type?: string; traceback?: string; stdout?: string; stderr?: string };
  /** Request → decoded result, in the browser. */
  clientMs: number;
  bytes: number;
  request: Record<string, unknown>;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class Api {
  constructor(
    public token: string,
    readonly origin = '',
  ) {}

  get baseUrl(): string {
    return `${this.origin || location.origin}${API}`;
  }

  private async call(method: string, path: string, body?: unknown): Promise<any> {
    const response = await fetch(`${this.origin}${API}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const text = await response.text();
    let doc: any = null;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = text;
    }
    if (!response.ok) throw new ApiError(doc?.error?.message ?? `${method} ${path}: HTTP ${response.status}`, response.status);
    return doc;
  }

  whoami(): Promise<{ owner: string }> {
    return this.call('GET', '/whoami');
  }
  listUdfs(): Promise<SavedUdf[]> {
    return this.call('GET', '/udfs');
  }
  getUdf(owner: string, name: string): Promise<UdfDoc & SavedUdf> {
    return this.call('GET', `/udfs/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`);
  }
  saveUdf(udf: UdfDoc): Promise<SavedUdf> {
    return this.call('POST', '/udfs', udf);
  }
  /** Fetches a UDF folder from GitHub on the server (the browser cannot: CORS) and saves it. */
  importGithub(url: string): Promise<SavedUdf> {
    return this.call('POST', '/udfs/github', { url });
  }
  deleteUdf(owner: string, name: string): Promise<null> {
    return this.call('DELETE', `/udfs/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`);
  }
  createToken(settings: Partial<Omit<TokenDoc, 'cache_max_age'>> & { udf: string; cache_max_age?: string | number | null }): Promise<TokenDoc> {
    return this.call('POST', '/tokens', settings);
  }
  listTokens(): Promise<TokenDoc[]> {
    return this.call('GET', '/tokens');
  }
  revokeToken(token: string): Promise<null> {
    return this.call('DELETE', `/tokens/${encodeURIComponent(token)}`);
  }

  // The files API (storage): fd:// paths on the server's store.
  listFiles(path: string): Promise<{ files: import('./files').FileEntry[] }> {
    return this.call('GET', `/files/list?path=${encodeURIComponent(path)}`);
  }
  deleteFile(path: string): Promise<unknown> {
    return this.call('DELETE', `/files?path=${encodeURIComponent(path)}&max_deletion_depth=unlimited`);
  }
  signUrl(path: string): Promise<{ url: string; expires: number }> {
    return this.call('POST', `/files/sign?path=${encodeURIComponent(path)}&expires_in=3600`);
  }
  async downloadFile(path: string): Promise<Blob> {
    const response = await fetch(`${this.origin}${API}/files/download?path=${encodeURIComponent(path)}`, {
      headers: { Authorization: `Bearer ${this.token}` },
    });
    if (!response.ok) throw new ApiError(`Download of ${path}: HTTP ${response.status}`, response.status);
    return response.blob();
  }
  async uploadFile(path: string, body: Blob): Promise<unknown> {
    const response = await fetch(`${this.origin}${API}/files/upload?path=${encodeURIComponent(path)}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${this.token}` },
      body,
    });
    const doc = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(doc?.error?.message ?? `Upload to ${path}: HTTP ${response.status}`, response.status);
    return doc;
  }

  // Batch jobs (the submit work's /server/v1/jobs routes).
  listJobs(): Promise<any[]> {
    return this.call('GET', '/jobs?n=50');
  }
  getJob(id: string): Promise<any> {
    return this.call('GET', `/jobs/${encodeURIComponent(id)}`);
  }
  tailJobLogs(id: string, after: number, timeout = 10): Promise<{ status: string; lines: any[] }> {
    return this.call('GET', `/jobs/${encodeURIComponent(id)}/logs/tail?after=${after}&timeout=${timeout}`);
  }
  cancelJob(id: string): Promise<any> {
    return this.call('POST', `/jobs/${encodeURIComponent(id)}/cancel`);
  }

  /** Runs posted code (File when `tile` is null, else that XYZ tile) and decodes the answer. */
  async run(
    udf: UdfDoc,
    parameters: Record<string, unknown>,
    tile: [number, number, number] | null,
    signal?: AbortSignal,
  ): Promise<RunResult> {
    const started = performance.now();
    const request = {
      udf: { name: udf.name, code: udf.code, entrypoint: udf.entrypoint ?? 'udf', headers: udf.headers ?? [] },
      parameters,
      tile,
      dtype_out_vector: 'geojson',
      dtype_out_raster: 'png',
    };
    const response = await fetch(`${this.origin}${API}/realtime/fused/api/v1/run/udf/code`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(request),
      signal,
    });
    let metadata: RunMetadata = {};
    try {
      metadata = JSON.parse(response.headers.get('X-Fused-Metadata') ?? '{}');
    } catch {
      /* a missing header leaves the metadata empty */
    }
    const type = response.headers.get('Content-Type') ?? '';
    const result: RunResult = { kind: 'none', status: response.status, metadata, clientMs: 0, bytes: 0, request };
    if (!response.ok) {
      const doc = await response.json().catch(() => ({}));
      const e = doc?.error ?? {};
      result.kind = 'error';
      result.error = { message: e.message ?? `HTTP ${response.status}`, ...(e.udf ?? {}) };
    } else if (response.status === 204) {
      result.kind = 'none';
    } else if (type.startsWith('image/')) {
      const blob = await response.blob();
      result.bytes = blob.size;
      result.kind = 'raster';
      result.image = await createImageBitmap(blob);
      result.bounds = metadata.bounds ?? [-180, -90, 180, 90];
    } else if (type.includes('json')) {
      const text = await response.text();
      result.bytes = text.length;
      const doc = JSON.parse(text);
      if (doc && doc.type === 'FeatureCollection') {
        result.kind = 'vector';
        result.features = doc.features ?? [];
      } else {
        result.kind = 'json';
        result.json = doc;
      }
    } else {
      result.text = await response.text();
      result.bytes = result.text.length;
      result.kind = type.startsWith('text/html') ? 'html' : 'json';
      if (result.kind === 'json') result.json = result.text;
    }
    result.clientMs = performance.now() - started;
    return result;
  }
}
