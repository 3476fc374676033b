// Precompresses the built files (terrafused serves file.gz to clients that accept gzip)
// and prints the bundle's gzipped size, which must stay under 2.5 MB.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const root = new URL('../../python/fused/web', import.meta.url).pathname;
let total = 0;
for (const name of readdirSync(root, { recursive: true })) {
  const path = join(root, name);
  if (!statSync(path).isFile() || path.endsWith('.gz')) continue;
  const gz = gzipSync(readFileSync(path), { level: 9 });
  total += gz.length;
  if (gz.length < statSync(path).size) writeFileSync(path + '.gz', gz);
}
console.log(`workbench bundle: ${(total / 1024 / 1024).toFixed(2)} MB gzipped`);
