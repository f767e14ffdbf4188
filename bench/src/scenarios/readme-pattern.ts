/**
 * Issue 10's README pattern, as a new user writes it: a ~200-byte JSON string per message,
 * `JSON.parse` in `handleMessage`, `putData` with the parsed object, `putBatchKey` by its `type`
 * (five types), one batcher (batchSize 100) whose `handleBatch` does nothing heavy. Processors
 * concurrency 2. Both runtimes are started first and their timed rounds alternate (threads,
 * inline, threads, ...), so that load from other work on the machine falls on both alike.
 * Target (issue 10): threads >= inline.
 *
 * The batcher's maxDemand is left at its default (= batchSize), as a new user leaves it. It used
 * to be set to 500 (5 keys × batchSize) as a workaround: the batcher counted messages waiting in
 * partial batches against its room, five keys' partial batches (up to 5 × 99) exceeded it, and
 * the inline runtime stalled for batchTimeout again and again (431 msg/s here). Like Broadway's,
 * the batcher no longer holds demand back for partial batches, so the workaround is gone.
 */
import { Pipeline, createMessage, type PipelineOptions } from '@throughway/core';
import type { BenchResult, Scenario } from '../scenario.js';
import { CountingAck, GatedProducer, fmtRate, log, median, timedRounds } from '../harness/measure.js';
import { makePayload } from '../fixtures/payloads.js';
import { callNote, demandNote, failureNote, joinNotes, warmNote, type ThroughputOutcome } from '../harness/pipeline.js';

const handlers = new URL('../fixtures/readme-handler.js', import.meta.url);
const SCENARIO = 'README pattern (parse, putData object, putBatchKey, batchSize 100)';
const TYPES = ['order', 'payment', 'refund', 'shipment', 'review'] as const;
/**
 * 1000 payloads, 200 of each type, emitted round-robin: every round is a whole number of
 * thousands, so each key ends a round on a full batch of 100 and no round waits for batchTimeout.
 */
const PAYLOADS = 1000;

function payloads(): string[] {
  return Array.from({ length: PAYLOADS }, (_, i) => {
    const event = JSON.parse(makePayload(i + 1)) as Record<string, unknown>;
    return JSON.stringify({ type: TYPES[i % TYPES.length], ...event });
  });
}

type Runtime = 'threads' | 'inline';

interface Running {
  runtime: Runtime;
  pipeline: Pipeline;
  producer: GatedProducer;
  ack: CountingAck;
  rates: number[];
  warmRate: number;
}

async function start(runtime: Runtime, data: string[]): Promise<Running> {
  const ack = new CountingAck();
  const producer = new GatedProducer(data, createMessage, ack);
  const options: PipelineOptions = {
    name: `bench-readme-${runtime}`,
    handlers,
    producer: { module: producer },
    processors: { default: { runtime, concurrency: 2 } },
    batchers: { default: { concurrency: 1, batchSize: 100, batchTimeout: 1000 } },
  };
  const t0 = performance.now();
  const pipeline = await Pipeline.start(options);
  log('readme-pattern', `${runtime}: started in ${(performance.now() - t0).toFixed(0)} ms`);
  return { runtime, pipeline, producer, ack, rates: [], warmRate: 0 };
}

const readmePattern: Scenario = async ({ quick }) => {
  const data = payloads();
  const rounds = quick ? 2 : 5;
  const roundSeconds = quick ? 0.5 : 1.5;
  const runs: Running[] = [];
  try {
    runs.push(await start('threads', data), await start('inline', data));
    // Warm-up of each (JIT, thread pools, the demand the threads runtime picks), which also sizes
    // the rounds: the same number of messages for both, about roundSeconds at the faster rate.
    const warmup = quick ? 20_000 : 100_000;
    let fastest = 0;
    for (const r of runs) {
      const t0 = performance.now();
      await timedRounds(r.producer, r.ack, { warmup, n: 0, rounds: 0 });
      const rate = warmup / ((performance.now() - t0) / 1000);
      fastest = Math.max(fastest, rate);
      r.warmRate = rate;
      log('readme-pattern', `${r.runtime} warm-up: ${warmup.toLocaleString('en-US')} msgs at ${fmtRate(rate)}`);
    }
    const perRound = Math.ceil(Math.min(2_000_000, Math.max(20_000, fastest * roundSeconds)) / 1000) * 1000;
    for (let round = 0; round < rounds; round++) {
      // Alternate which runtime goes first in each round as well.
      const order = round % 2 ? [...runs].reverse() : runs;
      for (const r of order) {
        const [rate] = await timedRounds(r.producer, r.ack, { warmup: 0, n: perRound, rounds: 1, label: `readme-pattern ${r.runtime}` });
        r.rates.push(rate!);
      }
    }
    const outcomes = new Map<Runtime, ThroughputOutcome>();
    for (const r of runs) {
      const outcome = {
        rate: median(r.rates),
        warmRate: r.warmRate,
        rates: r.rates,
        perRound,
        failed: r.ack.failed,
        firstFailure: r.ack.firstFailure,
        topology: r.pipeline.topology(),
        stats: r.pipeline.stats(),
      };
      const { unacked } = await r.pipeline.stop();
      outcomes.set(r.runtime, { ...outcome, unacked });
    }
    runs.length = 0;
    const threads = outcomes.get('threads')!;
    const inline = outcomes.get('inline')!;
    const range = (o: ThroughputOutcome): string => `range ${fmtRate(Math.min(...o.rates))}–${fmtRate(Math.max(...o.rates))}`;
    const common = `~${data[0]!.length}-byte JSON string, ${TYPES.length} batch keys (batcher maxDemand at its default, no workaround needed), processors concurrency 2, 1 batch slot; median of ${rounds} rounds of ${perRound.toLocaleString('en-US')}, alternating with the other runtime`;
    const results: BenchResult[] = [
      {
        scenario: SCENARIO,
        case: 'threads',
        value: threads.rate,
        unit: 'msg/s',
        baseline: { name: 'inline, same run', value: inline.rate },
        ratio: median(threads.rates.map((t, i) => t / inline.rates[i]!)),
        target: '>= 1× inline',
        met: median(threads.rates.map((t, i) => t / inline.rates[i]!)) >= 1 && threads.failed === 0 && threads.unacked === 0,
        note: joinNotes(common, range(threads), warmNote(threads, warmup), demandNote(threads.topology), callNote(threads), failureNote(threads)),
      },
      {
        scenario: SCENARIO,
        case: 'inline',
        value: inline.rate,
        unit: 'msg/s',
        note: joinNotes(common, range(inline), warmNote(inline, warmup), demandNote(inline.topology), failureNote(inline)),
      },
    ];
    return results;
  } finally {
    for (const r of runs) await r.pipeline.stop({ timeout: 5000 }).catch(() => undefined);
  }
};

export default readmePattern;
