/**
 * No-op handler, no batchers, with acks: msg/s through the threads and the inline runtime, against
 * the same-run Piscina baselines (one task per message; chunked round trip with no pipeline).
 */
import os from 'node:os';
import type { BenchResult, Scenario } from '../scenario.js';
import { findPrior } from '../harness/context.js';
import { callNote, demandNote, failureNote, joinNotes, pipelineThroughput } from '../harness/pipeline.js';
import { makePayloads } from '../fixtures/payloads.js';

const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);
const SCENARIO = 'no-op, no batchers';

const noop: Scenario = async ({ quick }) => {
  const payloads = makePayloads(1024);
  const cores = os.availableParallelism();
  const plan = { warmup: quick ? 100_000 : 300_000, roundSeconds: quick ? 1 : 2, rounds: quick ? 2 : 5, minPerRound: 100_000 };
  const results: BenchResult[] = [];

  const threads = await pipelineThroughput('no-op threads', payloads, { name: 'bench-noop-threads', handlers, processors: { default: { runtime: 'threads' } } }, plan);
  const withData = await pipelineThroughput('no-op threads, data to the ack', payloads, { name: 'bench-noop-threads-data', handlers, processors: { default: { runtime: 'threads' } } }, plan, { idsOnly: false });
  const inline = await pipelineThroughput('no-op inline', payloads, { name: 'bench-noop-inline', handlers, processors: { default: { runtime: 'inline' } } }, plan);
  const inlineWide = await pipelineThroughput('no-op inline maxDemand 1000', payloads, { name: 'bench-noop-inline-1000', handlers, processors: { default: { runtime: 'inline', maxDemand: 1000 } } }, plan);

  const oneTask = findPrior('baseline', 'piscina, one task per message');
  const chunked = [findPrior('baseline', 'piscina, chunks of 100 (round trip)'), findPrior('baseline', 'piscina, chunks of 1000 (round trip)')]
    .filter((r) => r !== undefined)
    .sort((a, b) => b.value - a.value)[0];
  const common = `~${payloads[0]!.length}-byte JSON string per message, counting acknowledger; median of ${threads.rates.length} rounds of ${threads.perRound.toLocaleString('en-US')}`;

  const threadsMet = threads.rate >= 800_000 && (!oneTask || threads.rate / oneTask.value >= 10) && threads.failed === 0;
  results.push({
    scenario: SCENARIO,
    case: 'threads (vs Piscina one task per message)',
    value: threads.rate,
    unit: 'msg/s',
    ...(oneTask ? { baseline: { name: 'Piscina, one task/msg', value: oneTask.value }, ratio: threads.rate / oneTask.value } : {}),
    target: '>= 800,000 msg/s and >= 10× baseline',
    met: threadsMet,
    note: joinNotes(common, demandNote(threads.topology), callNote(threads), `${cores} cores`, failureNote(threads), oneTask ? undefined : 'baseline missing (run with baselines)'),
  });
  if (chunked) {
    results.push({
      scenario: SCENARIO,
      case: 'threads (vs chunked Piscina, no pipeline)',
      value: threads.rate,
      unit: 'msg/s',
      baseline: { name: chunked.case.replace(' (round trip)', ''), value: chunked.value },
      ratio: threads.rate / chunked.value,
      note: 'the faster of the chunked Piscina round trips (100 / 1000 strings per task): the cost of the pipeline around the same thread hops (messages, demand, acks)',
    });
  }
  results.push({
    scenario: SCENARIO,
    case: 'threads, acknowledger reads processed data (vs ids only)',
    value: withData.rate,
    unit: 'msg/s',
    baseline: { name: 'threads, idsOnly acknowledger', value: threads.rate },
    ratio: withData.rate / threads.rate,
    note: joinNotes('each acked message carries its processed data: encoded in the thread, moved back, decoded only if read (never, here)', failureNote(withData)),
  });
  for (const [name, o] of [
    ['inline (default maxDemand)', inline],
    ['inline (maxDemand 1000)', inlineWide],
  ] as const) {
    results.push({
      scenario: SCENARIO,
      case: name,
      value: o.rate,
      unit: 'msg/s',
      target: '>= 2,000,000 msg/s',
      met: o.rate >= 2_000_000 && o.failed === 0,
      note: joinNotes(`median of ${o.rates.length} rounds of ${o.perRound.toLocaleString('en-US')}`, demandNote(o.topology), callNote(o), failureNote(o)),
    });
  }
  return results;
};

export default noop;
