import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // QEMU suites run through `npm run test:e2e` (vitest.e2e.config.ts).
    exclude: ['test/e2e/**', 'node_modules/**'],
    // Generous for a loaded CI machine (load ≈ 8 on 2 cores); a passing test ends when its events come.
    testTimeout: 90_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Integration suites start real peers on free ports; two workers match the CI machine's two cores.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
