import { defineConfig } from 'vitest/config';

/** `npm run test:e2e` (scripts/test-e2e.sh): QEMU end-to-end suites, one at a time (each boots a VM under TCG). */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts'],
    testTimeout: 20 * 60_000,
    hookTimeout: 5 * 60_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default'],
  },
});
