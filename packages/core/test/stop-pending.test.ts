// Edges of shutdown (issue 9, finding 8): a testBatch()/testMessage() promise still waiting when
// the pipeline stops rejects with ERR_THROUGHWAY_STOPPED instead of never settling (which ended
// a process awaiting it with exit code 13).
import { describe, expect, test } from 'vitest';
import { RUNTIMES, captureLogger, useHarness, waitFor } from './helpers.js';

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe.each(RUNTIMES)('testBatch/testMessage when the pipeline stops [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('a stop() that times out rejects a pending testBatch with ERR_THROUGHWAY_STOPPED and the acks that came', async () => {
    // calls of one message: 1 is acked, 2 is still in its handler when stop() gives up
    const p = await h.start(h.options({ logger: captureLogger().logger }, { maxDemand: 2, minDemand: 1 }));
    const pending = p.testBatch([{ id: 1 }, { id: 2, sleepMs: 4000 }]);
    const settled = rejection(pending);
    await waitFor(() => p.stats().acks.successful === 1, 'message 1 acked', 30_000);
    const result = await p.stop({ timeout: 100 });
    expect(result.unacked).toBe(1);
    const error = await settled;
    expect(error.code).toBe('ERR_THROUGHWAY_STOPPED');
    expect(error.message).toMatch(/stopped before 1 of the 2 messages were acked/);
    expect(error.details.unacked).toBe(1);
    expect(error.details.successful.map((m: any) => m.data.id)).toEqual([1]);
    expect(error.details.failed).toEqual([]);
  });

  test('testMessage rejects the same way', async () => {
    const p = await h.start(h.options({ logger: captureLogger().logger }));
    const settled = rejection(p.testMessage({ id: 1, sleepMs: 4000 }));
    await waitFor(() => p.stats().processors.inFlight === 1, 'the message in its handler', 30_000);
    await p.stop({ timeout: 100 });
    expect((await settled).code).toBe('ERR_THROUGHWAY_STOPPED');
  });

  test('a graceful stop rejects a testBatch whose message handleBatch never returned', async () => {
    const batchers = { default: { batchSize: 2, batchTimeout: 60_000 } };
    const p = await h.start(h.options({ batchers, logger: captureLogger().logger }));
    const settled = rejection(p.testBatch([{ id: 1 }, { id: 2, drop: true }]));
    await waitFor(() => p.stats().batchers.default!.notReturned === 1, 'the batch ran', 30_000);
    await p.stop({ timeout: 10_000 });
    const error = await settled;
    expect(error.code).toBe('ERR_THROUGHWAY_STOPPED');
    expect(error.details.successful.map((m: any) => m.data.id)).toEqual([1]);
    expect(error.details.unacked).toBe(1);
  });

  test('a testBatch fully acked before stop() resolves as before', async () => {
    const p = await h.start(h.options({ logger: captureLogger().logger }));
    const { successful, failed } = await p.testBatch([{ id: 1 }, { id: 2, fail: 'throw' }]);
    expect(successful.map((m: any) => m.data.id)).toEqual([1]);
    expect(failed.map((m: any) => m.data.id)).toEqual([2]);
    expect((await p.stop()).unacked).toBe(0);
  });
});
