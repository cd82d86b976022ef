import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: { target: 'es2022', chunkSizeWarningLimit: 2048, reportCompressedSize: false },
  test: { include: ['src/**/*.test.ts'] }
} as Parameters<typeof defineConfig>[0]);
