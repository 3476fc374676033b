import { defineConfig } from 'vite';

// Built into the Python package (python/fused/web), which terrafused serves at /workbench.
// `TF_SERVER=http://127.0.0.1:8000 npm run dev` serves the sources with the API proxied.
const proxy = process.env.TF_SERVER ? { '/server/v1': process.env.TF_SERVER } : undefined;

export default defineConfig({
  base: '/workbench/',
  server: { proxy },
  preview: { proxy },
  build: {
    outDir: '../python/fused/web',
    emptyOutDir: true,
    chunkSizeWarningLimit: 4000,
    sourcemap: false,
  },
  test: { include: ['src/**/*.test.ts'] },
});
