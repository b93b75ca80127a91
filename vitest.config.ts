import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // integration suites spawn nats-server and worker processes; two cores only
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
