/**
 * Issue 10's comparison with Elixir Broadway: its four no-op configurations (processors
 * concurrency 2) × three kinds of data × both runtimes, each row beside Broadway's figure for
 * that configuration: the one measured for the issue (Broadway 1.3.0 on OTP 25, its own no-op
 * benchmark, a counting producer, 1M messages timed from start to the last ack, the median of
 * three rounds, integer data), or, when `THROUGHWAY_BROADWAY` names a command that runs
 * Broadway's benchmark, Broadway measured in this run with the same kind of data, right before
 * Throughway's rows (see `broadwayNow`). This repository ships no Elixir code: the command is the
 * user's own. Throughway's figures are timed rounds through a started pipeline (start-up is the
 * `startup` scenario), so the two are not timed identically; read the ratio as a guide.
 */
import { execFileSync } from 'node:child_process';
import type { PipelineOptions } from '@throughway/core';
import type { BenchResult, ScenarioOptions } from '../scenario.js';
import { makePayloads } from '../fixtures/payloads.js';
import { log } from './measure.js';
import { callNote, demandNote, failureNote, joinNotes, pipelineThroughput, warmNote } from './pipeline.js';

export interface BroadwayConfig {
  /** Scenario module suffix and row label. */
  label: string;
  /** The configuration's number (1-4) as `THROUGHWAY_BROADWAY` takes it. */
  number: number;
  /** Broadway 1.3.0's median for this configuration, msg/s (issue 10). */
  broadway: number;
  processors: { maxDemand?: number };
  batchers?: { concurrency: number; batchSize: number };
}

export const BROADWAY_CONFIGS: Record<string, BroadwayConfig> = {
  default: { number: 1, label: 'no batchers, default demand', broadway: 680_000, processors: {} },
  demand100: { number: 2, label: 'no batchers, maxDemand 100', broadway: 1_200_000, processors: { maxDemand: 100 } },
  batch100: { number: 3, label: 'batcher, batchSize 100', broadway: 490_000, processors: {}, batchers: { concurrency: 1, batchSize: 100 } },
  demand100batch100x2: { number: 4, label: 'maxDemand 100, batchSize 100, 2 batch slots', broadway: 630_000, processors: { maxDemand: 100 }, batchers: { concurrency: 2, batchSize: 100 } },
};

/**
 * Messages let through before the clock starts, on both sides. Node 20's JIT (no Maglev) needs
 * ~1M messages through a threads pipeline before its rate settles: V8 tiers up each of the five
 * isolates' code on its own, and the coordinator's per-task code (one call per 100 messages)
 * reaches TurboFan only after thousands of calls. Rounds of 200,000 after start (maxDemand 100, 2
 * batch slots, integers) ran at 0.26, 0.49, 0.61, 0.80 and then 0.84-0.93M msg/s, with V8's
 * compiler threads busy until the fourth. Timed from 150,000 as before, the median round sat on
 * that ramp. Broadway is timed from the same count (`THROUGHWAY_BROADWAY`'s fourth argument), and
 * each row's note gives the warm-up's own rate, the cold figure.
 */
const WARMUP = 1_000_000;

const DATA_KINDS = ['integer', '200-byte JSON string', 'plain object'] as const;
export type DataKind = (typeof DATA_KINDS)[number];

function dataOf(kind: DataKind): unknown[] {
  const strings = makePayloads(1024);
  if (kind === 'integer') return strings.map((_, i) => i);
  if (kind === 'plain object') return strings.map((s) => JSON.parse(s) as unknown);
  return strings;
}

/** How `THROUGHWAY_BROADWAY` names each kind of data. */
const BROADWAY_KIND: Record<DataKind, string> = { integer: 'int', '200-byte JSON string': 'string', 'plain object': 'map' };

/**
 * Broadway's median for one configuration and kind of data, measured now: `THROUGHWAY_BROADWAY`
 * is a command run as `<command> <configuration 1-4> <int|string|map> <rounds> <warm-up>` (the
 * messages acked before its clock starts) whose last line of output holds the median in msg/s as
 * its last number (`median: 930,614 msg/s`, say).
 * Undefined when the variable is unset; a command that fails or prints no figure fails the
 * scenario (a comparison silently against the old figure would mislead).
 */
export function broadwayNow(config: BroadwayConfig, kind: DataKind, rounds: number, warmup: number): number | undefined {
  const command = process.env.THROUGHWAY_BROADWAY;
  if (!command) return undefined;
  const output = execFileSync(command, [String(config.number), BROADWAY_KIND[kind], String(rounds), String(warmup)], { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'inherit'] });
  const last = (output.trim().split('\n').at(-1) ?? '').replace(/,/g, '');
  const figure = Number(/([\d.]+)\D*$/.exec(last)?.[1]);
  if (!Number.isFinite(figure) || figure <= 0) throw new Error(`THROUGHWAY_BROADWAY printed no figure for configuration ${config.number} ${BROADWAY_KIND[kind]}: ${output.trim().slice(-200)}`);
  return figure;
}

const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);

/**
 * One configuration's six rows. Runtimes alternate within each kind of data so that load from
 * other work on the machine falls on both alike.
 */
export async function broadwayRows(key: string, { quick }: ScenarioOptions): Promise<BenchResult[]> {
  const config = BROADWAY_CONFIGS[key]!;
  const plan = { warmup: quick ? 20_000 : WARMUP, roundSeconds: quick ? 0.4 : 1, rounds: quick ? 2 : 3, minPerRound: 10_000 };
  const scenario = `vs Broadway: ${config.label}`;
  const results: BenchResult[] = [];
  for (const kind of DATA_KINDS) {
    const data = dataOf(kind);
    const now = broadwayNow(config, kind, plan.rounds, plan.warmup);
    const baseline = now === undefined ? { name: 'Broadway 1.3.0 (issue 10)', value: config.broadway } : { name: `Broadway 1.3.0 (this run, ${BROADWAY_KIND[kind]})`, value: now };
    if (now !== undefined) log(`broadway ${key} ${kind}`, `Broadway now: ${(now / 1e6).toFixed(2)}M msg/s`);
    for (const runtime of ['threads', 'inline'] as const) {
      const options: Omit<PipelineOptions, 'producer'> = {
        name: `bench-broadway-${key}-${runtime}-${kind.replace(/\W+/g, '-')}`,
        handlers,
        processors: { default: { runtime, concurrency: 2, ...config.processors } },
        ...(config.batchers ? { batchers: { default: { ...config.batchers, batchTimeout: 1000 } } } : {}),
      };
      const o = await pipelineThroughput(`${key} ${runtime} ${kind}`, data, options, plan);
      const target = runtime === 'threads' ? 1 : 2;
      const ratio = o.rate / baseline.value;
      results.push({
        scenario,
        case: `${runtime}, ${kind}`,
        value: o.rate,
        unit: 'msg/s',
        baseline,
        ratio,
        target: `>= ${target}× Broadway`,
        met: ratio >= target && o.failed === 0 && o.unacked === 0,
        note: joinNotes(
          `processors concurrency 2; median of ${o.rates.length} rounds of ${o.perRound.toLocaleString('en-US')}`,
          demandNote(o.topology),
          callNote(o),
          warmNote(o, plan.warmup),
          failureNote(o),
          now === undefined ? '' : `${(o.rate / config.broadway).toFixed(2)}× issue 10's figure (${(config.broadway / 1e6).toFixed(2)}M)`,
        ),
      });
    }
  }
  return results;
}
