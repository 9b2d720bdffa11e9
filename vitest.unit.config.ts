// The fast loop: tests that need no server (no global setup, no MariaDB/Redis/S3).
// `npm test` runs these too, with everything else.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/engines/mysql-filter.test.ts', 'test/engines/redis-resp.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
  },
});
