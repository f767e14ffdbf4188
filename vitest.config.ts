import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time. Vitest's default on 2 cores is one, but most files spend their
    // time waiting on child processes, brokers, Postgres and timers, not on the CPU; two at a time
    // keeps CI's three Node lines inside its time budget.
    maxWorkers: 2,
    // Type tests (`*.test-d.ts`, expectTypeOf): checked by tsc against the built declarations.
    typecheck: { enabled: true, include: ['packages/*/test/**/*.test-d.ts'], tsconfig: './tsconfig.typecheck.json' },
  },
});
