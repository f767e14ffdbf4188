/**
 * Start-up (issue 10): `Pipeline.start` to the first ack, with 2 processor threads and one batch
 * worker: thread boot, loading the handler module in each thread, `setup`, the first message
 * through a processor thread and the batch worker (`testMessage`, batch mode 'flush', so no
 * batch timeout is waited for). Each round is a new pipeline, stopped before the next starts.
 */
import type { BenchResult, Scenario } from '../scenario.js';
import { Pipeline } from '@throughway/core';
import { log, median } from '../harness/measure.js';

const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);

async function firstAck(runtime: 'threads' | 'inline', round: number): Promise<number> {
  const t0 = performance.now();
  const pipeline = await Pipeline.start({
    name: `bench-startup-${runtime}-${round}`,
    handlers,
    producer: { module: { handleDemand: () => [] } },
    processors: { default: { runtime, concurrency: 2 } },
    batchers: { default: { concurrency: 1, batchSize: 100 } },
  });
  const { successful } = await pipeline.testMessage('{"id":1}');
  const ms = performance.now() - t0;
  await pipeline.stop();
  if (successful.length !== 1) throw new Error(`startup ${runtime}: the first message was not acked successful`);
  return ms;
}

const startup: Scenario = async ({ quick }) => {
  const rounds = quick ? 3 : 7;
  const times: Record<'threads' | 'inline', number[]> = { threads: [], inline: [] };
  // Alternating, so that other load on the machine falls on both alike.
  for (let r = 0; r < rounds; r++) {
    for (const runtime of ['threads', 'inline'] as const) {
      const ms = await firstAck(runtime, r);
      times[runtime].push(ms);
      log('startup', `${runtime} round ${r + 1}: ${ms.toFixed(0)} ms`);
    }
  }
  const row = (runtime: 'threads' | 'inline'): BenchResult => {
    const xs = times[runtime];
    return {
      scenario: 'start-up',
      case: `Pipeline.start to first ack, ${runtime} (2 processors, 1 batch slot)`,
      value: median(xs),
      unit: 'ms',
      ...(runtime === 'threads' ? { target: '<= 150 ms (half of the 110–300 ms of issue 10)', met: median(xs) <= 150 } : {}),
      note: `median of ${xs.length} rounds, range ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} ms; a new pipeline per round`,
    };
  };
  return [row('threads'), row('inline')];
};

export default startup;
