import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Integration suites start real peers on free ports; two workers match the CI machine's two cores.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
