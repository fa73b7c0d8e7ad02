import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The build lands in dist/, which Go embeds (frontend/embed.go). dist/.gitkeep
// must survive a build so the Go packages compile before the first one:
// vite leaves dist alone and `npm run clean` empties it around .gitkeep.
export default defineConfig({
  plugins: [svelte()],
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: true,
  },
  // `npm run dev` talks to a lastseend on its default address.
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/badge': 'http://127.0.0.1:8080',
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
