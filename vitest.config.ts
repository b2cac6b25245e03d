import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // the fault suite has its own config and script: npm run test:faults
    exclude: [...configDefaults.exclude, 'tests/faults/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // dev-env networks are heavy; keep files in separate forks but few at once on 2 cores.
    pool: 'forks',
    maxWorkers: 2,
  },
})
