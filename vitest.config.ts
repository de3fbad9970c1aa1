import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The CLI tests run the bundled bin: made again here when tsc's output is newer.
    globalSetup: ['test/helpers/bundle.ts'],
    // Kernel tests share global kernel state (tracefs, lo, cgroups): run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
