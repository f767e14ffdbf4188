// Failures nobody asked for are logged at error, once per distinct failure and rate-limited; a
// deliberate Message.failed stays silent. Both runtimes.
import { describe, expect, test } from 'vitest';
import { FAILURE_LOG_BURST } from '../src/topology/failure-log.js';
import { AckRecorder, RUNTIMES, captureLogger, useHarness } from './helpers.js';

const errorLines = (lines: any[], stage?: string) => lines.filter((l) => l.level === 50 && (!stage || l.stage === stage));

describe.each(RUNTIMES)('failure logging [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('a handleMessage that throws is logged at error with pipeline, stage, err (real type, stack) and count; msg once', async () => {
    const cap = captureLogger();
    const rec = new AckRecorder();
    const opts = h.options({ logger: cap.logger });
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, fail: 'code' }, 3]));
    await rec.waitForCount(3);
    const lines = errorLines(cap.lines, 'handleMessage');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ pipeline: opts.name, stage: 'handleMessage', messages: 1, msg: 'handleMessage threw; 1 message failed' });
    expect(lines[0].err).toMatchObject({ type: 'TypeError', message: 'bad input 2', code: 'E_BAD_INPUT' });
    expect(lines[0].err.stack).toContain('scripted.ts');
    const raw = cap.raw.find((r) => r.includes('handleMessage threw'))!;
    expect(raw.match(/"msg"/g)).toHaveLength(1);
  });

  test('a handleMessage that returns something else than a message is logged as an invalid return', async () => {
    const cap = captureLogger();
    const rec = new AckRecorder();
    const p = await h.start(h.options({ logger: cap.logger }));
    p.push(rec.messages([{ id: 1, fail: 'junk' }]));
    await rec.waitForCount(1);
    const [line] = errorLines(cap.lines, 'handleMessage');
    expect(line.msg).toBe('handleMessage returned an invalid value; 1 message failed');
    expect(line.err).toMatchObject({ type: 'TypeError', code: 'ERR_THROUGHWAY_INVALID_RETURN', message: 'expected a Message from handleMessage, got `42` (number)' });
  });

  test('a prepareMessages that throws is logged once with the size of the call', async () => {
    const cap = captureLogger();
    const rec = new AckRecorder();
    const p = await h.start(h.options({ logger: cap.logger }));
    p.push(rec.messages([1, { id: 2, prepare: 'throw' }, 3]));
    await rec.waitForCount(3);
    const lines = errorLines(cap.lines, 'prepareMessages');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ messages: 3, msg: 'prepareMessages threw; 3 messages failed', err: { type: 'Error', message: 'prepare exploded' } });
  });

  test('a handleBatch that throws or returns junk is logged with batcher, key and the batch size', async () => {
    const cap = captureLogger();
    const rec = new AckRecorder();
    const p = await h.start(h.options({ logger: cap.logger, batchers: { default: { batchSize: 2, batchTimeout: 20_000 } } }));
    p.push(rec.messages([{ id: 1, batchKey: 'a', batchFail: 'throw' }, { id: 2, batchKey: 'a' }, { id: 3, batchKey: 'b', batchFail: 'junk' }, { id: 4, batchKey: 'b' }]));
    await rec.waitForCount(4);
    const lines = errorLines(cap.lines, 'handleBatch').sort((x, y) => String(x.batchKey).localeCompare(String(y.batchKey)));
    expect(lines.map((l) => [l.batcher, l.batchKey, l.messages, l.err.type, l.msg])).toEqual([
      ['default', 'a', 2, 'Error', 'handleBatch threw; 2 messages failed'],
      ['default', 'b', 2, 'TypeError', 'handleBatch returned an invalid value; 2 messages failed'],
    ]);
    expect(lines[0].err).toMatchObject({ message: 'batch exploded a', code: 'E_BATCH' });
  });

  test('Message.failed is a deliberate failure: nothing is logged', async () => {
    const cap = captureLogger();
    const rec = new AckRecorder();
    const p = await h.start(h.options({ logger: cap.logger, batchers: { default: { batchSize: 2, batchTimeout: 20_000 } } }));
    p.push(rec.messages([{ id: 1, fail: 'reason' }, { id: 2, batchFail: 'reason' }, { id: 3 }]));
    await rec.waitForCount(3);
    expect(rec.failedIds().sort()).toEqual([1, 2]);
    expect(cap.lines.filter((l) => l.level >= 40)).toEqual([]);
  });

  test('a flood of one failure logs the first ones in full, then one line with the count', async () => {
    const cap = captureLogger();
    const rec = new AckRecorder();
    const p = await h.start(h.options({ logger: cap.logger }));
    // 50 messages, each failing with its own message text but the same type and throw site.
    p.push(rec.messages(Array.from({ length: 50 }, (_, i) => ({ id: i + 1, fail: 'throw' }))));
    await rec.waitForCount(50);
    await p.stop();
    const lines = errorLines(cap.lines, 'handleMessage');
    const full = lines.filter((l) => l.repeated === undefined);
    const summaries = lines.filter((l) => l.repeated !== undefined);
    expect(full).toHaveLength(FAILURE_LOG_BURST);
    expect(summaries).toHaveLength(1);
    expect(summaries[0].msg).toMatch(/^handleMessage failed \d+ more times \(\d+ messages\) with the same error/);
    expect(full.reduce((n, l) => n + l.messages, 0) + summaries[0].messages).toBe(50);
    expect(rec.failedIds()).toHaveLength(50);
  });
});

describe.each(RUNTIMES)('counters [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('messages count as in the pipeline from admission: stop() reports those still in a producer buffer', async () => {
    const rec = new AckRecorder();
    const p = await h.start(h.options());
    // maxDemand 10: at most 10 reach the processor, the other 20 wait in the producer stage.
    p.push(rec.messages(Array.from({ length: 30 }, (_, i) => ({ id: i + 1, sleepMs: 200 }))));
    expect(p.stats().unacked).toBe(30);
    expect(p.stats().producers.buffered).toBeGreaterThanOrEqual(20);
    const { unacked } = await p.stop({ timeout: 100 });
    expect(unacked).toBe(30 - rec.count());
    expect(unacked).toBeGreaterThanOrEqual(20);
  });

  test('stats().processors.load counts the processor\'s busy time', async () => {
    const rec = new AckRecorder();
    const t0 = performance.now();
    const p = await h.start(h.options());
    // 20 × 40 ms of spinning in handleMessage: at least 800 ms of busy time on the one processor.
    p.push(rec.messages(Array.from({ length: 20 }, (_, i) => ({ id: i + 1, busyMs: 40 }))));
    await rec.waitForCount(20);
    const { load } = p.stats().processors;
    // load = busy / wall since the start, per processor (concurrency 1 here). The handler spins
    // on Date.now() (whole ms), the runtime times the task with performance.now(): a 40 ms spin
    // may read 39.9 ms there, so the bound leaves 5% for that (a CI run read 799.8).
    expect(load).toBeLessThanOrEqual(1);
    expect(load * (performance.now() - t0)).toBeGreaterThanOrEqual(760);
  });
});
