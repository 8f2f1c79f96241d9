import { defineConfig } from 'vitest/config';

// `cap` aborts the process when loaded inside a worker thread, so test files
// run in child processes (forks), never in worker threads.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
