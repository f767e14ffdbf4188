// Finite runs finish: producers report exhaustion through their controller, `pipeline.done`
// settles once everything taken in is acked (and the pipeline stops itself), `Pipeline.run`
// resolves with the final figures. Both runtimes.
import { describe, expect, test } from 'vitest';
import { Pipeline, fromIterable, type Producer } from '@throughway/core';
import { AckRecorder, RUNTIMES, SCRIPTED, uniqueName, useHarness } from './helpers.js';

describe.each(RUNTIMES)('finite runs [%s]', (runtime) => {
  const h = useHarness(runtime);
  const processors = { default: { concurrency: 1, maxDemand: 10, minDemand: 5, runtime } };

  test('done settles once fromIterable is used up and every message is acked; the pipeline has stopped', async () => {
    const rec = new AckRecorder();
    const items = Array.from({ length: 25 }, (_, i) => ({ id: i + 1 }));
    const p = await h.start({ name: uniqueName('done'), handlers: SCRIPTED, producer: { module: fromIterable(items, { acknowledger: { module: rec.module, ref: 'items' } }) }, processors });
    const result = await p.done;
    expect(result).toEqual({ unacked: 0 });
    expect(rec.successIds()).toEqual(items.map((x) => x.id));
    expect(() => p.push([])).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_NOT_RUNNING' }));
  });

  test('done waits for batches of an exhausted async source, then resolves', async () => {
    const rec = new AckRecorder();
    async function* source() {
      for (let i = 1; i <= 12; i++) yield { id: i };
    }
    const p = await h.start({
      name: uniqueName('done-async'),
      handlers: SCRIPTED,
      producer: { module: fromIterable(source(), { acknowledger: { module: rec.module, ref: 'async' } }) },
      processors,
      batchers: { default: { batchSize: 5, batchTimeout: 60_000 } },
    });
    await p.done;
    // 12 = 5 + 5 + 2: the last batch is flushed by the stop that `done` ran.
    expect(rec.successIds().sort((a: any, b: any) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(rec.calls.map((c) => c.successful.length)).toEqual([5, 5, 2]);
  });

  test('Pipeline.run resolves with totals, failures by reason, wall time and msg/s', async () => {
    const items = [{ id: 1 }, { id: 2, fail: 'reason' }, { id: 3 }, { id: 4, fail: 'throw' }, { id: 5 }, { id: 6, fail: 'reason' }];
    const result = await Pipeline.run({ name: uniqueName('run'), handlers: SCRIPTED, producer: { module: fromIterable(items) }, processors });
    expect(result.totals).toEqual({ messages: 6, successful: 3, failed: 3 });
    expect(result.failures).toEqual({ 'rejected 2': 1, 'rejected 6': 1, 'Error: boom 4': 1 });
    expect(result.unacked).toBe(0);
    expect(result.wallMs).toBeGreaterThan(0);
    expect(result.messagesPerSecond).toBeCloseTo(6 / (result.wallMs / 1000), 6);
    expect(result.stats.processors.messages).toBe(6);
  });

  test('done also settles when stop() is called first, with what stop() reports', async () => {
    const never: Producer = { handleDemand: () => [] };
    const p = await h.start({ name: uniqueName('done-stop'), handlers: SCRIPTED, producer: { module: never }, processors });
    const stopped = await p.stop();
    await expect(p.done).resolves.toEqual(stopped);
  });

  test('a producer that never reports exhaustion keeps the pipeline running', async () => {
    const rec = new AckRecorder();
    const items = [rec.message({ id: 1 })];
    const producer: Producer = { handleDemand: (n) => items.splice(0, n) };
    const p = await h.start({ name: uniqueName('not-done'), handlers: SCRIPTED, producer: { module: producer }, processors });
    await rec.waitForCount(1);
    let settled = false;
    void p.done.then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(settled).toBe(false);
    expect(() => p.push([])).not.toThrow();
  });
});
