import { defineConfig } from 'vitest/config'

// The fault suite (`npm run test:faults`): kill -9, dropped and stalled relays, PLC outages, the big
// fuzz run. Slow by nature, so apart from `npm test`; .ci/run runs both.
export default defineConfig({
  test: {
    include: ['tests/faults/**/*.test.ts'],
    testTimeout: 45 * 60_000,
    hookTimeout: 10 * 60_000,
    pool: 'forks',
    maxWorkers: 1,
    // the fuzz measures heap growth after a collection
    execArgv: ['--expose-gc'],
  },
})
