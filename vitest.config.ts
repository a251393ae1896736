import { defineConfig } from 'vitest/config';

// Tests run TypeScript sources directly; integration tests spawn the compiled CLI (dist/), which
// `npm test` builds first. Real processes and real namespaces are slow to start, hence the timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Removes the temp directories each test file made (test/helpers/tmp.ts).
    setupFiles: ['test/helpers/cleanup.ts'],
    reporters: ['default'],
  },
});
