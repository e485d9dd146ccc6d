import { defineConfig } from 'vitest/config';

// Three tiers by suffix (STYLE.md): *.unit.test.ts (pure), *.int.test.ts (one component over real
// Postgres, Redis and Kafka), *.e2e.test.ts (all services, black box). Real infrastructure comes from
// packages/testing's global setup: environment variables, else Docker, else local processes.
export default defineConfig({
  test: {
    globalSetup: ['./packages/testing/src/global-setup.ts'],
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 3, minForks: 1 } },
    reporters: ['default', './test/infra/summary-reporter.ts'],
  },
});
