/**
 * Issue 10's comparison with Elixir Broadway: its four no-op configurations (processors
 * concurrency 2) × three kinds of data × both runtimes, each row beside Broadway's own figure for
 * that configuration. Broadway cannot run here (no Elixir on this machine), so its figures are
 * the ones measured for the issue on this machine in one sitting: Broadway 1.3.0 on OTP 25, its
 * own no-op benchmark, a counting producer, 1M messages timed from start to the last ack, the
 * median of three rounds. Throughway's are timed rounds through a started pipeline (start-up is
 * the `startup` scenario), so the two are not timed identically; read the ratio as a guide.
 */
import type { PipelineOptions } from '@throughway/core';
import type { BenchResult, ScenarioOptions } from '../scenario.js';
import { makePayloads } from '../fixtures/payloads.js';
import { callNote, demandNote, failureNote, joinNotes, pipelineThroughput } from './pipeline.js';

export interface BroadwayConfig {
  /** Scenario module suffix and row label. */
  label: string;
  /** Broadway 1.3.0's median for this configuration, msg/s (issue 10). */
  broadway: number;
  processors: { maxDemand?: number };
  batchers?: { concurrency: number; batchSize: number };
}

export const BROADWAY_CONFIGS: Record<string, BroadwayConfig> = {
  default: { label: 'no batchers, default demand', broadway: 680_000, processors: {} },
  demand100: { label: 'no batchers, maxDemand 100', broadway: 1_200_000, processors: { maxDemand: 100 } },
  batch100: { label: 'batcher, batchSize 100', broadway: 490_000, processors: {}, batchers: { concurrency: 1, batchSize: 100 } },
  demand100batch100x2: { label: 'maxDemand 100, batchSize 100, 2 batch slots', broadway: 630_000, processors: { maxDemand: 100 }, batchers: { concurrency: 2, batchSize: 100 } },
};

const DATA_KINDS = ['integer', '200-byte JSON string', 'plain object'] as const;
type DataKind = (typeof DATA_KINDS)[number];

function dataOf(kind: DataKind): unknown[] {
  const strings = makePayloads(1024);
  if (kind === 'integer') return strings.map((_, i) => i);
  if (kind === 'plain object') return strings.map((s) => JSON.parse(s) as unknown);
  return strings;
}

const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);

/**
 * One configuration's six rows. Runtimes alternate within each kind of data so that load from
 * other work on the machine falls on both alike.
 */
export async function broadwayRows(key: string, { quick }: ScenarioOptions): Promise<BenchResult[]> {
  const config = BROADWAY_CONFIGS[key]!;
  const plan = { warmup: quick ? 20_000 : 150_000, roundSeconds: quick ? 0.4 : 1, rounds: quick ? 2 : 3, minPerRound: 10_000 };
  const scenario = `vs Broadway: ${config.label}`;
  const results: BenchResult[] = [];
  for (const kind of DATA_KINDS) {
    const data = dataOf(kind);
    for (const runtime of ['threads', 'inline'] as const) {
      const options: Omit<PipelineOptions, 'producer'> = {
        name: `bench-broadway-${key}-${runtime}-${kind.replace(/\W+/g, '-')}`,
        handlers,
        processors: { default: { runtime, concurrency: 2, ...config.processors } },
        ...(config.batchers ? { batchers: { default: { ...config.batchers, batchTimeout: 1000 } } } : {}),
      };
      const o = await pipelineThroughput(`${key} ${runtime} ${kind}`, data, options, plan);
      const target = runtime === 'threads' ? 1 : 2;
      const ratio = o.rate / config.broadway;
      results.push({
        scenario,
        case: `${runtime}, ${kind}`,
        value: o.rate,
        unit: 'msg/s',
        baseline: { name: 'Broadway 1.3.0 (issue 10)', value: config.broadway },
        ratio,
        target: `>= ${target}× Broadway`,
        met: ratio >= target && o.failed === 0 && o.unacked === 0,
        note: joinNotes(
          `processors concurrency 2; median of ${o.rates.length} rounds of ${o.perRound.toLocaleString('en-US')}`,
          demandNote(o.topology),
          callNote(o),
          failureNote(o),
        ),
      });
    }
  }
  return results;
}
