/** No-op handler with one batcher (batchSize 100): msg/s through the threads runtime (and inline, for reference). */
import type { BenchResult, Scenario } from '../scenario.js';
import { findPrior } from '../harness/context.js';
import { callNote, demandNote, failureNote, joinNotes, pipelineThroughput } from '../harness/pipeline.js';
import { makePayloads } from '../fixtures/payloads.js';

const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);
const SCENARIO = 'no-op, batcher (batchSize 100)';

const withBatcher: Scenario = async ({ quick }) => {
  const payloads = makePayloads(1024);
  const plan = { warmup: quick ? 100_000 : 300_000, roundSeconds: quick ? 1 : 2, rounds: quick ? 2 : 5, minPerRound: 100_000 };
  const batchers = { default: { concurrency: 1, batchSize: 100, batchTimeout: 1000 } };

  const threads = await pipelineThroughput('batcher threads', payloads, { name: 'bench-batcher-threads', handlers, processors: { default: { runtime: 'threads' } }, batchers }, plan);
  const inline = await pipelineThroughput('batcher inline', payloads, { name: 'bench-batcher-inline', handlers, processors: { default: { runtime: 'inline' } }, batchers }, plan);
  const chunked = findPrior('baseline', 'piscina, chunks of 100 (round trip)');

  const results: BenchResult[] = [
    {
      scenario: SCENARIO,
      case: 'threads',
      value: threads.rate,
      unit: 'msg/s',
      ...(chunked ? { baseline: { name: 'Piscina, chunks of 100', value: chunked.value }, ratio: threads.rate / chunked.value } : {}),
      target: '>= 500,000 msg/s',
      met: threads.rate >= 500_000 && threads.failed === 0,
      note: joinNotes(
        `processors in a Piscina pool, handleBatch in a batch worker thread (1 slot); median of ${threads.rates.length} rounds of ${threads.perRound.toLocaleString('en-US')}`,
        demandNote(threads.topology),
        callNote(threads),
        failureNote(threads),
      ),
    },
    {
      scenario: SCENARIO,
      case: 'inline',
      value: inline.rate,
      unit: 'msg/s',
      note: joinNotes(`for reference, no target; median of ${inline.rates.length} rounds of ${inline.perRound.toLocaleString('en-US')}`, failureNote(inline)),
    },
  ];
  return results;
};

export default withBatcher;
