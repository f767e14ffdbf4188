// Batching (issue 2, "Batching"), for both runtimes.
import { describe, expect, test } from 'vitest';
import { AckRecorder, RUNTIMES, captureLogger, readLog, sleep, sum, tmpLog, useHarness, waitFor } from './helpers.js';

describe.each(RUNTIMES)('batching [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('a batch is emitted at batchSize (trigger "size"), in arrival order; the rest flushes on stop', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({ context: { log }, batchers: { default: { batchSize: 3, batchTimeout: 20_000 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1, 2, 3, 4, 5, 6, 7]));
    await rec.waitForCount(6);
    await sleep(50);
    expect(tel.batches().map((b) => [b.ids, b.trigger])).toEqual([
      [[1, 2, 3], 'size'],
      [[4, 5, 6], 'size'],
    ]);
    expect(tel.batch[0].batchInfo).toEqual({ batcher: 'default', batchKey: 'default', partition: null, size: 3, trigger: 'size' });
    expect(rec.shape()).toEqual([
      [[1, 2, 3], []],
      [[4, 5, 6], []],
    ]);
    const result = await p.stop({ timeout: 5000 });
    expect(result.unacked).toBe(0);
    expect(tel.batches().map((b) => [b.ids, b.trigger])[2]).toEqual([[7], 'flush']);
    expect(rec.shape()[2]).toEqual([[7], []]);
    // handleBatch received the processed data and the batch info
    const lines = readLog(log).filter((l) => l.ev === 'batch');
    expect(lines.map((l) => [l.batcher, l.ids, l.info.trigger, l.info.size, l.allProcessed])).toEqual([
      ['default', [1, 2, 3], 'size', 3, true],
      ['default', [4, 5, 6], 'size', 3, true],
      ['default', [7], 'flush', 1, true],
    ]);
  });

  test("a processor call's full batches go to the batch slot in one hand-off, in order", async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 100, batchTimeout: 20_000 } } }, { concurrency: 1, maxDemand: 1000, minDemand: 500 });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const ids = Array.from({ length: 500 }, (_, i) => i + 1);
    p.push(rec.messages(ids));
    await rec.waitForCount(500);
    // One processor call of 500 made five batches: all five went in one call to the slot
    // (before, the first two went alone and the other three waited for them).
    expect(p.stats().processors.calls).toBe(1);
    expect(p.stats().batchers.default).toMatchObject({ batches: 5, calls: 1, messages: 500, successful: 500 });
    expect(tel.batches().map((b) => [b.ids[0], b.ids.length, b.trigger])).toEqual([
      [1, 100, 'size'],
      [101, 100, 'size'],
      [201, 100, 'size'],
      [301, 100, 'size'],
      [401, 100, 'size'],
    ]);
    expect(rec.shape().map(([ok]) => ok.length)).toEqual([100, 100, 100, 100, 100]);
    expect((await p.stop({ timeout: 5000 })).unacked).toBe(0);
  });

  test('five keys at batchSize 100 with the default demand fill their batches without waiting for batchTimeout', async () => {
    const rec = new AckRecorder();
    const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];
    const TIMEOUT = 30_000;
    // The processors' and the batcher's demand left at their defaults (inline: maxDemand 10).
    const opts = h.options({ batchers: { default: { batchSize: 100, batchTimeout: TIMEOUT } } });
    delete opts.processors.default.maxDemand;
    delete opts.processors.default.minDemand;
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    // Round-robin over the keys: each key's batch fills only after ~500 messages, when the other
    // four keys hold 99 each in partial batches (495, more than the batcher's room of 310 here).
    const datas = Array.from({ length: 2000 }, (_, i) => ({ id: i, batchKey: KEYS[i % KEYS.length] }));
    const t0 = Date.now();
    p.push(rec.messages(datas));
    await rec.waitForCount(2000, TIMEOUT - 5000);
    const elapsed = Date.now() - t0;
    // Not a speed claim: a single wait for batchTimeout would take 30 s.
    expect(elapsed).toBeLessThan(TIMEOUT);
    const batches = tel.batches();
    expect(batches.length).toBe(20);
    expect(new Set(batches.map((b) => b.trigger))).toEqual(new Set(['size']));
    for (const key of KEYS) {
      const mine = batches.filter((b) => b.key === key);
      expect(mine.map((b) => b.ids.length), key).toEqual([100, 100, 100, 100]);
      // arrival order kept within the key
      expect(mine.flatMap((b) => b.ids), key).toEqual(datas.filter((d) => d.batchKey === key).map((d) => d.id));
    }
    expect(rec.count()).toBe(2000);
    expect(sum(rec.calls.map((c) => c.failed.length))).toBe(0);
    expect(p.stats().batchers.default).toMatchObject({ pending: 0, queued: 0, batches: 20, successful: 2000 });
  });

  test('a slow handleBatch holds the processors back; partial batches of several keys do not', async () => {
    const rec = new AckRecorder();
    const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];
    // processors: maxDemand 10 (one slot); batcher: concurrency 1, batchSize 10, maxDemand = 10,
    // and each batch takes >= 150 ms. The processors hand over only while the full batches
    // (queued for the slot or running) and what they hold in flight stay under the batcher's room:
    // its maxDemand + 2 * concurrency * batchSize (30), plus what they may hand over at once (10).
    // A hand-over admitted just under it adds one processor demand (10) and may complete the keys'
    // partial batches (< 5 * 10); the partial batches themselves stay under 5 * 10.
    const ROOM = 10 + 2 * 1 * 10 + 10;
    const PARTIAL = KEYS.length * 10;
    const FULL = ROOM + 10 + PARTIAL;
    const BOUND = 10 + FULL + PARTIAL;
    let demanded = 0;
    let maxOutstanding = 0;
    let n = 0;
    const producer = {
      handleDemand(d: number) {
        demanded += d;
        maxOutstanding = Math.max(maxOutstanding, demanded - rec.count());
        return Array.from({ length: d }, () => {
          const id = n++;
          return rec.message({ id, batchKey: KEYS[id % KEYS.length], batchSleepMs: 150 });
        });
      },
    };
    const opts = h.options({ producer: { module: producer }, batchers: { default: { concurrency: 1, batchSize: 10, batchTimeout: 30_000 } } });
    const tel = h.telemetry(opts.name);
    const t0 = Date.now();
    const p = await h.start(opts);
    let maxQueued = 0;
    let maxPending = 0;
    const sample = () => {
      const b = p.stats().batchers.default;
      maxQueued = Math.max(maxQueued, b.queued);
      maxPending = Math.max(maxPending, b.pending);
      return true;
    };
    // Progress (a loaded machine may take a while to start the threads), then 1.5 s more.
    await waitFor(() => sample() && rec.count() >= 10, 'the first batch acked', 20_000);
    const t1 = Date.now();
    while (Date.now() - t1 < 1500) {
      sample();
      await sleep(10);
    }
    const acked = rec.count();
    const elapsed = Date.now() - t0;
    // The slot was busy and full batches waited for it up to the room: the processors were held
    // back by it (an endless producer behind fast processors would otherwise be pulled without end).
    expect(maxQueued).toBeGreaterThanOrEqual(ROOM - 10);
    expect(maxQueued).toBeLessThanOrEqual(FULL);
    expect(maxPending).toBeLessThan(PARTIAL);
    expect(maxOutstanding).toBeLessThanOrEqual(BOUND);
    expect(demanded - rec.count()).toBeLessThanOrEqual(BOUND);
    // one batch of <= 10 at a time, >= 150 ms each: bounded by the time that actually passed
    expect(acked).toBeLessThanOrEqual(10 * (Math.floor(elapsed / 150) + 1));
    // every batch so far was full: no key waited for its timeout
    expect(new Set(tel.batches().map((b) => b.trigger))).toEqual(new Set(['size']));
    await p.stop({ timeout: 10_000 });
    expect(rec.count()).toBe(n);
    expect(sum(rec.calls.map((c) => c.failed.length))).toBe(0);
  });

  test('a batch is emitted batchTimeout after its first message (trigger "timeout")', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 100, batchTimeout: 200 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const t0 = Date.now();
    p.push(rec.messages([1, 2]));
    await rec.waitForCount(2);
    const batches = tel.batches();
    expect(batches.map((b) => [b.ids, b.trigger, b.size])).toEqual([[[1, 2], 'timeout', 2]]);
    expect(batches[0].t - t0).toBeGreaterThanOrEqual(195);
    expect(batches[0].t - t0).toBeLessThan(2000);
  });

  test('the batch timer starts at the first message and is not reset by later ones', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({ context: { log }, batchers: { default: { batchSize: 100, batchTimeout: 1000 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1]));
    await waitFor(() => tel.processor.length === 1, 'message 1 handed to the batcher');
    await sleep(600);
    p.push(rec.messages([2]));
    await rec.waitForCount(2);
    // When each message reached the batcher (the processor event follows batcher.add in the same tick).
    const [in1, in2] = tel.processor.map((e) => e.t);
    const first = tel.batches()[0];
    expect(first.trigger).toBe('timeout');
    expect(first.ids[0]).toBe(1);
    // When handleBatch began on the first batch: after the emit, before the trip back.
    const started = readLog(log).find((l) => l.ev === 'batch').start;
    // Not reset: emitted batchTimeout after message 1 (a timer may fire ~1 ms early)...
    expect(started - in1).toBeGreaterThanOrEqual(995);
    // ...where a reset timer would wait until batchTimeout after message 2 (>= 600 ms later).
    expect(started).toBeLessThan(in2! + 1000);
  });

  test('a "flush" message emits its pending batch at the end of its chunk (trigger "flush")', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 100, batchTimeout: 20_000 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const t0 = Date.now();
    p.push(rec.messages([1, 2, { id: 3, mode: 'flush' }]));
    await rec.waitForCount(3);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(tel.batches().map((b) => [b.ids, b.trigger])).toEqual([[[1, 2, 3], 'flush']]);
    expect(rec.find(3).batchMode).toBe('flush');
    expect(rec.find(1).batchMode).toBe('bulk');
  });

  test('batches are formed per batcher and per batch key; handleBatch gets the batcher name', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({
      context: { log },
      batchers: {
        a: { batchSize: 2, batchTimeout: 250 },
        b: { batchSize: 3, batchTimeout: 250 },
      },
    });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const datas = [
      { id: 1, batcher: 'a', batchKey: 'x' },
      { id: 2, batcher: 'a', batchKey: 'y' },
      { id: 3, batcher: 'a', batchKey: 'x' },
      { id: 4, batcher: 'a', batchKey: 'y' },
      { id: 5, batcher: 'a', batchKey: 'x' },
      { id: 6, batcher: 'b', batchKey: 'x' },
      { id: 7, batcher: 'b', batchKey: 'x' },
      { id: 8, batcher: 'b', batchKey: 'x' },
      { id: 9, batcher: 'b', batchKey: 'x' },
      { id: 10, batcher: 'b', batchKey: 'z' },
    ];
    p.push(rec.messages(datas));
    await rec.waitForCount(10);
    const byGroup = (batcher: string, key: string) =>
      tel
        .batches()
        .filter((b) => b.batcher === batcher && b.key === key)
        .map((b) => [b.ids, b.trigger]);
    expect(byGroup('a', 'x')).toEqual([
      [[1, 3], 'size'],
      [[5], 'timeout'],
    ]);
    expect(byGroup('a', 'y')).toEqual([[[2, 4], 'size']]);
    expect(byGroup('b', 'x')).toEqual([
      [[6, 7, 8], 'size'],
      [[9], 'timeout'],
    ]);
    expect(byGroup('b', 'z')).toEqual([[[10], 'timeout']]);
    expect(tel.batch.length).toBe(6);
    // telemetry's top-level batcher matches the batch info; handleBatch got the batcher name
    for (const e of tel.batch) expect(e.batcher).toBe(e.batchInfo.batcher);
    for (const l of readLog(log).filter((x) => x.ev === 'batch')) expect(l.batcher).toBe(l.info.batcher);
    // one ack call per batch (one acknowledger, one ref), each message acked with its routing
    expect(rec.calls.length).toBe(6);
    for (const d of datas) {
      const m = rec.find(d.id);
      expect(m.batcher).toBe(d.batcher);
      expect(m.batchKey).toBe(d.batchKey);
    }
  });

  test('a batch key is always handled on one slot, serially (batcher concurrency 2)', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({
      context: { log },
      batchers: { default: { concurrency: 2, batchSize: 2, batchTimeout: 30 } },
    });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const keys = ['k1', 'k2', 'k3'];
    const datas = Array.from({ length: 18 }, (_, i) => ({ id: i, batchKey: keys[i % 3], batchSleepMs: 60 }));
    p.push(rec.messages(datas));
    await rec.waitForCount(18, 15_000);
    const batches = tel.batches();
    const lines = readLog(log).filter((l) => l.ev === 'batch');
    expect(new Set(batches.map((b) => b.slot)).size).toBeLessThanOrEqual(2);
    for (const key of keys) {
      const slots = new Set(batches.filter((b) => b.key === key).map((b) => b.slot));
      expect(slots.size, `slots used by ${key}`).toBe(1);
      const mine = lines.filter((l) => l.info.batchKey === key).sort((a, b) => a.start - b.start);
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i].start, `batch ${i} of ${key} starts after batch ${i - 1} ended`).toBeGreaterThanOrEqual(mine[i - 1].end);
      }
      // arrival order kept within the key
      expect(mine.flatMap((l) => l.ids)).toEqual(datas.filter((d) => d.batchKey === key).map((d) => d.id));
      if (runtime === 'threads') expect(new Set(mine.map((l) => l.tid)).size, `threads used by ${key}`).toBe(1);
    }
  });

  test('two busy batch keys are spread over two slots, and each keeps its slot', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { concurrency: 2, batchSize: 2, batchTimeout: 30 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    // 'customers' and 'orders' hash to the same slot of two; assignment by load must not.
    const datas = Array.from({ length: 12 }, (_, i) => ({ id: i, batchKey: i % 2 ? 'orders' : 'customers', batchSleepMs: 20 }));
    p.push(rec.messages(datas));
    await rec.waitForCount(12, 15_000);
    const batches = tel.batches();
    const slotOf = (key: string) => new Set(batches.filter((b) => b.key === key).map((b) => b.slot));
    expect(slotOf('customers').size).toBe(1);
    expect(slotOf('orders').size).toBe(1);
    expect([...slotOf('customers')][0]).not.toBe([...slotOf('orders')][0]);
  });

  test('handleBatch that throws fails the whole batch; other batches are fine', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 3, batchTimeout: 20_000 } } });
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, batchFail: 'throw' }, 3, 4, 5, 6]));
    await rec.waitForCount(6);
    expect(rec.shape()).toEqual([
      [[], [1, 2, 3]],
      [[4, 5, 6], []],
    ]);
    for (const id of [1, 2, 3]) {
      const s = rec.find(id).status;
      expect(s.kind).toBe('error');
      expect(s.error).toMatchObject({ message: 'batch exploded default', code: 'E_BATCH' });
    }
  });

  test('handleBatch that returns junk fails the whole batch', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 3, batchTimeout: 20_000 } } });
    const p = await h.start(opts);
    p.push(rec.messages([1, 2, { id: 3, batchFail: 'junk' }, 4, 5, 6]));
    await rec.waitForCount(6);
    expect(rec.shape()).toEqual([
      [[], [1, 2, 3]],
      [[4, 5, 6], []],
    ]);
    for (const id of [1, 2, 3]) expect(rec.find(id).status.kind).not.toBe('ok');
  });

  test('messages handleBatch marks failed are acked failed, the rest of the batch succeeds', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 3, batchTimeout: 20_000 } } });
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, batchFail: 'reason' }, 3]));
    await rec.waitForCount(3);
    expect(rec.shape()).toEqual([[[1, 3], [2]]]);
    expect(rec.find(2).status).toEqual({ kind: 'failed', reason: 'batch rejected 2' });
  });

  test('messages handleBatch does not return are logged and never acked', async () => {
    const rec = new AckRecorder();
    const cap = captureLogger();
    const opts = h.options({ logger: cap.logger, batchers: { default: { batchSize: 3, batchTimeout: 20_000 } } });
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, drop: true }, 3]));
    await rec.waitForCount(2);
    expect(rec.shape()).toEqual([[[1, 3], []]]);
    await waitFor(() => cap.warnings(/returned only/).length > 0, 'a warning about the missing message');
    expect(JSON.stringify(cap.warnings(/returned only/))).toMatch(/received 3 messages and returned only 2/);
    await p.stop({ timeout: 3000 });
    await sleep(50);
    expect(rec.ids()).not.toContain(2);
    expect(rec.count()).toBe(2);
  });
});
