// Acknowledgement (issue 2, "Acks"), for both runtimes.
import { describe, expect, test } from 'vitest';
import { AckRecorder, RUNTIMES, captureLogger, readLog, sleep, tmpLog, useHarness, waitFor } from './helpers.js';

describe.each(RUNTIMES)('acks [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('without batchers, each processor call acks its messages in one call, after the call', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({ context: { log } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1, 2, { id: 3, fail: 'throw' }, 4, 5, 6, 7]));
    await rec.waitForCount(7);
    expect(tel.processorSizes()).toEqual([5, 2]);
    expect(rec.shape()).toEqual([
      [[1, 2, 4, 5], [3]],
      [[6, 7], []],
    ]);
    expect(rec.calls.map((c) => c.ref)).toEqual(['r', 'r']);
    expect(tel.ack.map((e) => [e.stage, e.ref, e.successful.length, e.failed.length])).toEqual([
      ['processor', 'r', 4, 1],
      ['processor', 'r', 2, 0],
    ]);
    // The processor call ended before its ack: every handleMessage of the first call had returned.
    // (Not tel.processor[0].t: that event is published after the ack, in the same tick, so the two
    // clock readings agree only when no millisecond boundary falls between them.)
    const firstCall = readLog(log).filter((l) => l.ev === 'message' && [1, 2, 3, 4, 5].includes(l.id));
    expect(firstCall.length).toBe(5);
    expect(Math.max(...firstCall.map((l) => l.end))).toBeLessThanOrEqual(rec.calls[0].t);
  });

  test('a processor runs one call at a time, in order, even when handleMessage awaits', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({ context: { log } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    // The first call (1-5) awaits 100 ms in its first message; the second (6, 7) must wait for it.
    p.push(rec.messages([{ id: 1, sleepMs: 100 }, 2, 3, 4, 5, 6, 7]));
    await rec.waitForCount(7);
    expect(tel.processorSizes()).toEqual([5, 2]);
    expect(rec.shape()).toEqual([
      [[1, 2, 3, 4, 5], []],
      [[6, 7], []],
    ]);
    const handled = readLog(log).filter((l) => l.ev === 'message');
    expect(handled.map((l) => l.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // Message 6 started after message 5 ended.
    expect(handled[5].start).toBeGreaterThanOrEqual(handled[4].end);
  });

  test('one ack call per (acknowledger, ref) per stage call, order kept in each list', async () => {
    const X = new AckRecorder();
    const Y = new AckRecorder();
    const p = await h.start(h.options());
    p.push([
      X.message({ id: 1 }, 'a'),
      X.message({ id: 2 }, 'b'),
      Y.message({ id: 3 }, 'a'),
      X.message({ id: 4, fail: 'reason' }, 'a'),
      X.message({ id: 5 }, 'b'),
    ]);
    await X.waitForCount(4);
    await Y.waitForCount(1);
    await sleep(50);
    const xByRef = new Map(X.calls.map((c) => [c.ref, c]));
    expect(X.calls.length).toBe(2);
    expect(xByRef.get('a')!.successful.map((m) => m.data.id)).toEqual([1]);
    expect(xByRef.get('a')!.failed.map((m) => m.data.id)).toEqual([4]);
    expect(xByRef.get('b')!.successful.map((m) => m.data.id)).toEqual([2, 5]);
    expect(xByRef.get('b')!.failed).toEqual([]);
    expect(Y.calls.map((c) => [c.ref, c.successful.map((m) => m.data.id), c.failed])).toEqual([['a', [3], []]]);
  });

  test('with batchers: failed messages are acked by the processor, the rest after their batch', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 2, batchTimeout: 20_000 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, fail: 'throw' }, 3, 4]));
    await rec.waitForCount(3);
    await sleep(100);
    // the processor acks only its failed message (no empty ack calls), then one call per batch
    expect(rec.shape()).toEqual([
      [[], [2]],
      [[1, 3], []],
    ]);
    expect(tel.ack.map((e) => [e.stage, e.successful.map((m: any) => m.data.id), e.failed.map((m: any) => m.data.id)])).toEqual([
      ['processor', [], [2]],
      ['batcher', [1, 3], []],
    ]);
    // message 4 waits in a pending batch (size 2 not reached, timeout 20 s) until stop flushes it
    expect(rec.ids()).not.toContain(4);
    await p.stop({ timeout: 3000 });
    expect(rec.shape()).toEqual([
      [[], [2]],
      [[1, 3], []],
      [[4], []],
    ]);
    expect(rec.calls.every((c) => c.successful.length + c.failed.length > 0)).toBe(true);
  });

  test('an ack that throws is logged and the pipeline goes on', async () => {
    const rec = new AckRecorder({ throwOnFirst: 1 });
    const cap = captureLogger();
    const p = await h.start(h.options({ logger: cap.logger }));
    p.push(rec.messages([1]));
    await rec.waitForCount(1);
    await waitFor(() => cap.warnings(/ack exploded/).length > 0, 'the ack error logged');
    p.push(rec.messages([2]));
    await rec.waitForCount(2);
    expect(rec.shape()).toEqual([
      [[1], []],
      [[2], []],
    ]);
  });

  test('an ack that rejects is logged and the pipeline goes on', async () => {
    const rec = new AckRecorder({ throwOnFirst: 1, throwMode: 'reject' });
    const cap = captureLogger();
    const p = await h.start(h.options({ logger: cap.logger, batchers: { default: { batchSize: 1, batchTimeout: 1000 } } }));
    p.push(rec.messages([1]));
    await rec.waitForCount(1);
    await waitFor(() => cap.warnings(/ack exploded \(async\)/).length > 0, 'the ack rejection logged');
    p.push(rec.messages([2]));
    await rec.waitForCount(2);
    expect(rec.shape()).toEqual([
      [[1], []],
      [[2], []],
    ]);
  });

  test('handleFailed sees every failed message of a processor call before its ack; its return is acked', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({ context: { log, handleFailed: 'annotate' } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, fail: 'reason' }, { id: 3, fail: 'throw' }, 4]));
    await rec.waitForCount(4);
    expect(rec.shape()).toEqual([[[1, 4], [2, 3]]]);
    const failedLines = readLog(log).filter((l) => l.ev === 'failed');
    expect(failedLines.map((l) => [l.ids, l.kinds])).toEqual([[[2, 3], ['failed', 'error']]]);
    // what handleFailed returned (a new reason) is what was acked
    for (const id of [2, 3]) expect(rec.find(id).status).toEqual({ kind: 'failed', reason: { handledBy: 'handleFailed', id } });
    expect(tel.handleFailed.map((e) => [e.stage, e.size, e.threw])).toEqual([['processor', 2, false]]);
    expect(tel.handleFailed[0].t).toBeLessThanOrEqual(rec.calls[0].t);
  });

  test('handleFailed runs for a failed batch too, before the batch is acked', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({
      context: { log, handleFailed: 'annotate' },
      batchers: { default: { batchSize: 2, batchTimeout: 20_000 } },
    });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, batchFail: 'throw' }, 3, { id: 4, batchFail: 'reason' }]));
    await rec.waitForCount(4);
    expect(rec.shape()).toEqual([
      [[], [1, 2]],
      [[3], [4]],
    ]);
    for (const id of [1, 2, 4]) expect(rec.find(id).status).toEqual({ kind: 'failed', reason: { handledBy: 'handleFailed', id } });
    expect(readLog(log).filter((l) => l.ev === 'failed').map((l) => l.ids)).toEqual([[1, 2], [4]]);
    expect(tel.handleFailed.map((e) => [e.stage, e.size, e.threw])).toEqual([
      ['batcher', 2, false],
      ['batcher', 1, false],
    ]);
  });

  test('if handleFailed throws, the original messages are acked as failed', async () => {
    const rec = new AckRecorder();
    const cap = captureLogger();
    const opts = h.options({ logger: cap.logger, context: { handleFailed: 'throw' } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, fail: 'reason' }, { id: 3, fail: 'throw' }]));
    await rec.waitForCount(3);
    expect(rec.shape()).toEqual([[[1], [2, 3]]]);
    expect(rec.find(2).status).toEqual({ kind: 'failed', reason: 'rejected 2' });
    expect(rec.find(3).status).toMatchObject({ kind: 'error', error: { name: 'Error', message: 'boom 3' } });
    expect(tel.handleFailed.map((e) => [e.stage, e.size, e.threw])).toEqual([['processor', 2, true]]);
    // the pipeline goes on
    p.push(rec.messages([4]));
    await rec.waitForCount(4);
    expect(rec.shape()[1]).toEqual([[4], []]);
  });

  test('ackImmediately acks at once (stage "immediate") and never again', async () => {
    const rec = new AckRecorder();
    // The batch (1, 2, 4) is held until stop() flushes it: the immediate acks cannot wait for it.
    const opts = h.options({ batchers: { default: { batchSize: 100, batchTimeout: 60_000 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, ackImmediately: true }, { id: 3, fail: 'reason', ackImmediately: true }, 4]));
    await waitFor(() => rec.ids().includes(2) && rec.ids().includes(3), 'the immediate acks');
    const callsBefore = rec.calls.length;
    expect(rec.ids()).not.toContain(1);
    const immediate = tel.ack.filter((e) => e.stage === 'immediate');
    expect(immediate.flatMap((e) => e.successful.map((m: any) => m.data.id))).toEqual([2]);
    expect(immediate.flatMap((e) => e.failed.map((m: any) => m.data.id))).toEqual([3]);
    expect(rec.find(2).status).toEqual({ kind: 'ok' });
    expect(rec.find(3).status).toEqual({ kind: 'failed', reason: 'rejected 3' });
    await p.stop({ timeout: 3000 });
    // each message acked exactly once: 2 and 3 never again (not by the processor nor the batch)
    expect(rec.ids().sort()).toEqual([1, 2, 3, 4]);
    expect(rec.calls.slice(callsBefore).flatMap((c) => [...c.successful, ...c.failed].map((m) => m.data.id))).toEqual([1, 4]);
    // as in Broadway, an ok message acked immediately still goes on through the pipeline (its
    // batch), only its ack is done; the failed one (3) stops at the processor
    expect(tel.batches().flatMap((b) => b.ids)).toEqual([1, 2, 4]);
  });

  test('configureAck calls the acknowledger\'s configure; the new ack data is on the acked message', async () => {
    const rec = new AckRecorder();
    const p = await h.start(h.options());
    p.push([rec.message({ id: 1, configureAck: { requeue: true } }, 'r', { attempt: 1 }), rec.message({ id: 2 }, 'r', { attempt: 5 })]);
    await rec.waitForCount(2);
    expect(rec.shape()).toEqual([[[1, 2], []]]);
    expect(rec.configureCalls).toEqual([{ ref: 'r', data: { attempt: 1 }, options: { requeue: true } }]);
    expect(rec.find(1).acknowledger.data).toEqual({ attempt: 1, requeue: true });
    expect(rec.find(2).acknowledger.data).toEqual({ attempt: 5 });
    expect(rec.find(1).acknowledger.module).toBe(rec.module);
  });

  test('configureAck on an acknowledger without configure fails the message', async () => {
    const rec = new AckRecorder({ configure: 'none' });
    const p = await h.start(h.options());
    p.push(rec.messages([{ id: 1, configureAck: { requeue: true } }, 2]));
    await rec.waitForCount(2);
    expect(rec.shape()).toEqual([[[2], [1]]]);
    expect(rec.find(1).status.kind).not.toBe('ok');
  });

  test('configureAck whose configure throws fails the message; the pipeline goes on', async () => {
    const rec = new AckRecorder({ configure: 'throw' });
    const p = await h.start(h.options());
    p.push(rec.messages([{ id: 1, configureAck: { requeue: true } }, 2]));
    await rec.waitForCount(2);
    expect(rec.shape()).toEqual([[[2], [1]]]);
    expect(rec.find(1).status.kind).not.toBe('ok');
    expect(JSON.stringify(rec.find(1).status)).toContain('configure exploded');
    p.push(rec.messages([3]));
    await rec.waitForCount(3);
  });

  test('acked messages carry the processed data, the metadata and up-to-date routing; idsOnly ones the source\'s data', async () => {
    const rec = new AckRecorder();
    const ids = new AckRecorder({ idsOnly: true });
    const log = tmpLog();
    const opts = h.options({ context: { log }, batchers: { default: { batchSize: 1, batchTimeout: 1000 } } });
    const p = await h.start(opts);
    p.push([rec.message({ id: 1, payload: 'x', batchKey: 'k9' }, 'r', undefined, { offset: 7 }), ids.message({ id: 2, batchKey: 'k9' })]);
    await rec.waitForCount(1);
    await ids.waitForCount(1);
    // the handler replaced data with { ...data, processed: true }; an idsOnly acknowledger never gets it
    expect(ids.find(2).data).toEqual({ id: 2, batchKey: 'k9' });
    expect(ids.find(2).batchKey).toBe('k9');
    const m = rec.find(1);
    expect(m.data).toEqual({ id: 1, payload: 'x', batchKey: 'k9', processed: true });
    expect(m.metadata).toEqual({ offset: 7 });
    expect(m.batcher).toBe('default');
    expect(m.batchKey).toBe('k9');
    expect(m.batchMode).toBe('bulk');
    expect(m.status).toEqual({ kind: 'ok' });
    // the handler saw the metadata
    expect(readLog(log).find((l) => l.ev === 'message' && l.id === 1).meta).toEqual({ offset: 7 });
  });

  test('handlers see each message\'s own metadata, whether a call\'s metadata shares one shape or not', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const p = await h.start(h.options({ context: { log } }));
    // same keys, primitive values (sent column-wise on threads)
    p.push([rec.message({ id: 1 }, 'r', undefined, { id: 1, attempts: 0 }), rec.message({ id: 2 }, 'r', undefined, { id: 2, attempts: 3 })]);
    // mixed shapes, a nested value and no metadata at all (sent per message)
    p.push([
      rec.message({ id: 3 }, 'r', undefined, { id: 3, nested: { x: [1, 2] } }),
      rec.message({ id: 4 }),
      rec.message({ id: 5 }, 'r', undefined, { id: 5, attempts: null }),
    ]);
    await rec.waitForCount(5);
    const seen = Object.fromEntries(readLog(log).filter((l) => l.ev === 'message').map((l) => [l.id, l.meta]));
    expect(seen).toEqual({
      1: { id: 1, attempts: 0 },
      2: { id: 2, attempts: 3 },
      3: { id: 3, nested: { x: [1, 2] } },
      4: {},
      5: { id: 5, attempts: null },
    });
  });
});
