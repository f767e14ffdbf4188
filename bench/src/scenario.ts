/** One figure of the benchmark table, always with its same-run baseline where one exists. */
export interface BenchResult {
  /** Scenario group, e.g. 'no-op', 'cpu-heavy', 'sqlite insertAll'. */
  scenario: string;
  /** What was measured, e.g. 'threads, no batchers'. */
  case: string;
  value: number;
  unit: string; // 'msg/s', 'rows/s', 'MiB', ...
  baseline?: { name: string; value: number };
  /** value / baseline.value (or the scenario's own definition, e.g. speedup). */
  ratio?: number;
  /** Human-readable target, e.g. '>= 0.90 of baseline' or '>= 800,000 msg/s'. */
  target?: string;
  met?: boolean;
  note?: string;
}

export interface ScenarioOptions {
  quick: boolean;
}

/** Each file in bench/src/scenarios/ default-exports one of these. */
export type Scenario = (options: ScenarioOptions) => Promise<BenchResult[]>;
