// Benchmarks are scripts, not timed tests: run them with `npm run bench:<name>`. They reuse
// test/support to start their own servers.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['bench/**/*.bench.ts'],
    testTimeout: 4 * 3600_000,
    hookTimeout: 3600_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
  },
});
