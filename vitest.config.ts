import { defineConfig } from 'vitest/config';

// Unit tests import src/ directly; CLI tests spawn bin/*.js, which run dist/ (built by the global setup).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/build-dist.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
