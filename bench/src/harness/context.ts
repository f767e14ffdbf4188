import type { BenchResult } from '../scenario.js';

/**
 * Results of the scenario modules that ran earlier in the same `pnpm bench` run (the harness runs
 * `baselines` first), so that a scenario can state its figure against a baseline measured in the
 * same run. Set by the child runner before the scenario module is imported.
 */
let prior: BenchResult[] = [];

export function setPriorResults(results: BenchResult[]): void {
  prior = results;
}

export function priorResults(): readonly BenchResult[] {
  return prior;
}

/** A same-run result by scenario and case, if it ran and produced a finite value. */
export function findPrior(scenario: string, caseName: string): BenchResult | undefined {
  return prior.find((r) => r.scenario === scenario && r.case === caseName && Number.isFinite(r.value));
}
