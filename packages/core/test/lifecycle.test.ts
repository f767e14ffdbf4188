// Lifecycle, producers, test helpers, setup/teardown, telemetry and topology (issue 2), for both
// runtimes.
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { DummyProducer, fromIterable, createMessage } from '@throughway/core';
import { childRunner, exitWithin } from '../../../test-support/child.js';
import { AckRecorder, RUNTIMES, captureLogger, readLog, sleep, tmpLog, useHarness, waitFor, Telemetry } from './helpers.js';

describe.each(RUNTIMES)('stop() [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('drains: prepareForDraining, nothing new pulled, in-flight processed, batches flushed and acked, then terminate', async () => {
    const rec = new AckRecorder();
    const events: string[] = [];
    let n = 0;
    let draining = false;
    let demandAfterDrain = 0;
    let controller: any;
    const producer = {
      init(c: any) {
        controller = c;
        events.push('init');
      },
      handleDemand(d: number) {
        events.push('demand');
        if (draining) demandAfterDrain += d;
        return Array.from({ length: d }, () => rec.message({ id: n++, sleepMs: 5 }));
      },
      prepareForDraining() {
        events.push(`prepareForDraining acked=${rec.count()}`);
        draining = true;
        // what a producer still emits while draining is processed
        controller.push([rec.message({ id: 'late' })]);
      },
      terminate() {
        events.push(`terminate acked=${rec.count()} emitted=${n + 1}`);
      },
    };
    const opts = h.options({
      producer: { module: producer },
      batchers: { default: { batchSize: 1000, batchTimeout: 60_000 } },
    });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    expect(controller.pipelineName).toBe(opts.name);
    await waitFor(() => tel.processor.length >= 2, 'two processor calls');
    expect(rec.count()).toBe(0); // everything waits in the pending batch
    const result = await p.stop();
    expect(result.unacked).toBe(0);
    expect(demandAfterDrain).toBe(0);
    expect(events[0]).toBe('init');
    const iDrain = events.findIndex((e) => e.startsWith('prepareForDraining'));
    const iTerm = events.findIndex((e) => e.startsWith('terminate'));
    expect(iDrain).toBeGreaterThan(0);
    expect(iTerm).toBe(events.length - 1);
    expect(events.slice(iDrain + 1, iTerm)).toEqual([]); // no demand after prepareForDraining
    // everything emitted (including 'late') was acked, once, before terminate
    const emitted = [...Array.from({ length: n }, (_, i) => i), 'late'];
    expect(rec.successIds().map(String).sort()).toEqual(emitted.map(String).sort());
    expect(rec.count()).toBe(emitted.length);
    expect(events[iTerm]).toBe(`terminate acked=${emitted.length} emitted=${emitted.length}`);
    // pending batches were flushed with trigger 'flush'
    expect(tel.batches().length).toBeGreaterThan(0);
    for (const b of tel.batches()) expect(b.trigger).toBe('flush');
  });

  test('past the timeout it ends anyway and reports the unacked messages', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const p = await h.start(h.options({ context: { log } }));
    p.push(rec.messages([{ id: 1, sleepMs: 4000 }, { id: 2 }]));
    await waitFor(() => readLog(log).some((l) => l.ev === 'prepare'), 'the call to start');
    const t0 = Date.now();
    const result = await p.stop({ timeout: 300 });
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(result.unacked).toBeGreaterThanOrEqual(1);
    expect(rec.ids()).not.toContain(1);
  });

  test('shutdownTimeout is the default stop timeout', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const p = await h.start(h.options({ context: { log }, shutdownTimeout: 300 }));
    p.push(rec.messages([{ id: 1, sleepMs: 4000 }]));
    await waitFor(() => readLog(log).some((l) => l.ev === 'prepare'), 'the call to start');
    const t0 = Date.now();
    const result = await p.stop();
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(result.unacked).toBe(1);
  });

  test('stop() on an idle pipeline resolves with nothing unacked', async () => {
    const p = await h.start(h.options({ batchers: { default: { batchSize: 10, batchTimeout: 100 } } }));
    const result = await p.stop();
    expect(result).toMatchObject({ unacked: 0 });
  });
});

describe.each(RUNTIMES)('setup and teardown [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('setup runs once per thread before any other callback; its return value replaces context', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options(
      {
        context: { log, setupReturns: true, setupSleepMs: 100 },
        batchers: { default: { concurrency: 2, batchSize: 2, batchTimeout: 50 } },
      },
      { concurrency: 2 },
    );
    const p = await h.start(opts);
    p.push(rec.messages(Array.from({ length: 12 }, (_, i) => ({ id: i, batchKey: `k${i % 4}` }))));
    await rec.waitForCount(12);
    await p.stop({ timeout: 5000 });
    expect(rec.failedIds()).toEqual([]);
    const lines = readLog(log);
    const setups = lines.filter((l) => l.ev === 'setup');
    const callbacks = lines.filter((l) => ['prepare', 'message', 'batch', 'failed'].includes(l.ev));
    expect(callbacks.length).toBeGreaterThan(0);
    const tids = new Set(lines.map((l) => l.tid));
    if (runtime === 'inline') {
      expect(setups.length).toBe(1);
      expect(tids.size).toBe(1);
    } else {
      // processors and batch slots run in other threads than the test's
      expect(callbacks.some((l) => l.tid === 0)).toBe(false);
      expect(new Set(lines.filter((l) => l.ev === 'batch').map((l) => l.tid)).size).toBeGreaterThanOrEqual(1);
      const batchSetups = setups.filter((l) => l.info?.kind === 'batcher');
      for (const s of batchSetups) {
        expect(s.info.batcher).toBe('default');
        expect(typeof s.info.slot).toBe('number');
      }
      for (const l of lines.filter((x) => x.ev === 'batch')) {
        expect(batchSetups.map((s) => s.tid)).toContain(l.tid);
      }
    }
    for (const tid of tids) {
      const mine = lines.filter((l) => l.tid === tid);
      const mySetups = mine.filter((l) => l.ev === 'setup');
      const myCallbacks = mine.filter((l) => ['prepare', 'message', 'batch', 'failed'].includes(l.ev));
      if (myCallbacks.length === 0) continue;
      expect(mySetups.length, `setup calls in thread ${tid}`).toBe(1);
      const done = mine.find((l) => l.ev === 'setup-done');
      expect(done, `setup finished in thread ${tid}`).toBeDefined();
      // every callback started after the (async) setup of its thread finished
      for (const c of myCallbacks) expect(c.start ?? c.t, `${c.ev} in thread ${tid}`).toBeGreaterThanOrEqual(done.t);
      // the value setup returned is the context of every later callback in that thread
      for (const c of myCallbacks.filter((x) => x.ev === 'message' || x.ev === 'batch')) {
        expect(c.fromSetup).toBe(`setup-${tid}`);
      }
      // teardown once per thread, on stop, after its last callback
      const teardowns = mine.filter((l) => l.ev === 'teardown');
      expect(teardowns.length, `teardown calls in thread ${tid}`).toBe(1);
      expect(teardowns[0].t).toBeGreaterThanOrEqual(Math.max(...myCallbacks.map((c) => c.end ?? c.t)));
    }
  });
});

describe.each(RUNTIMES)('a failing teardown [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('is logged once at stop, naming each thread and its error; stop still ends every thread', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const cap = captureLogger();
    const opts = h.options(
      { logger: cap.logger, context: { log, teardown: 'throw' }, batchers: { default: { batchSize: 4, batchTimeout: 50 } } },
      { concurrency: 2 },
    );
    const p = await h.start(opts);
    p.push(rec.messages(Array.from({ length: 40 }, (_, i) => i)));
    await rec.waitForCount(40);
    expect(cap.warnings(/teardown/)).toEqual([]);
    expect(await p.stop({ timeout: 10_000 })).toEqual({ unacked: 0 });
    expect(rec.failedIds()).toEqual([]);
    // the threads whose teardown ran (each logged it before throwing)
    const tids = readLog(log).filter((l) => l.ev === 'teardown').map((l) => l.tid as number);
    expect(tids.length).toBeGreaterThanOrEqual(runtime === 'inline' ? 1 : 2); // a processor thread and the batch thread at least
    const lines = cap.warnings(/teardown/);
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line.code).toBe('ERR_THROUGHWAY_TEARDOWN_FAILED');
    expect(line.pipeline).toBe(opts.name);
    expect(line.teardowns.map((f: any) => f.error).sort()).toEqual(tids.map((tid) => `teardown exploded in thread ${tid}`).sort());
    if (runtime === 'inline') {
      expect(line.teardowns).toEqual([{ where: 'main thread', error: 'teardown exploded in thread 0' }]);
    } else {
      for (const f of line.teardowns) expect(f.where).toMatch(new RegExp(`^(processor thread|batcher "default" slot 0 \\(thread) ${f.error.split(' ').at(-1)}\\)?$`));
      expect(line.teardowns.filter((f: any) => f.where.startsWith('batcher'))).toHaveLength(1);
    }
    expect(line.msg).toContain(`teardown failed in ${tids.length === 1 ? 'one thread' : `${tids.length} threads`} at stop`);
    for (const tid of tids) expect(line.msg).toContain(`teardown exploded in thread ${tid}`);
    // nothing else was reported as a failure
    expect(cap.lines.filter((l) => l.level >= 40 && l !== line)).toEqual([]);
  });

  test('that never settles: stop waits 5 s, goes on (ending the thread) and says so', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const cap = captureLogger();
    const opts = h.options({ logger: cap.logger, context: { log, teardown: 'hang' } }, { concurrency: 1 });
    const p = await h.start(opts);
    p.push(rec.messages([1, 2, 3]));
    await rec.waitForCount(3);
    const t0 = Date.now();
    expect(await p.stop({ timeout: 10_000 })).toEqual({ unacked: 0 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
    const tids = readLog(log).filter((l) => l.ev === 'teardown').map((l) => l.tid as number);
    expect(tids).toHaveLength(1);
    const lines = cap.warnings(/teardown/);
    expect(lines).toHaveLength(1);
    expect(lines[0].code).toBe('ERR_THROUGHWAY_TEARDOWN_FAILED');
    if (runtime === 'inline') {
      expect(tids[0]).toBe(0);
      expect(lines[0].teardowns).toEqual([{ where: 'main thread', error: 'did not finish within 5000 ms; stop() went on without it' }]);
    } else {
      expect(tids[0]).toBeGreaterThan(0);
      expect(lines[0].teardowns).toEqual([{ where: `processor thread ${tids[0]}`, error: 'did not finish within 5000 ms; the thread was ended anyway' }]);
    }
  }, 20_000);
});

describe.each(RUNTIMES)('producers [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('DummyProducer produces nothing and accepts pushes', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ producer: { module: new DummyProducer() } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    await sleep(150);
    expect(tel.processor).toEqual([]);
    p.push(rec.messages([1, 2, 3]));
    await rec.waitForCount(3);
    expect(rec.shape()).toEqual([[[1, 2, 3], []]]);
    expect(await (new DummyProducer() as any).handleDemand(10)).toEqual([]);
  });

  test('fromIterable pulls lazily from an endless iterable, only what was demanded', async () => {
    const rec = new AckRecorder();
    let pulled = 0;
    function* endless() {
      for (;;) {
        pulled += 1;
        yield rec.message({ id: pulled, sleepMs: 2 });
      }
    }
    let maxAhead = 0;
    const opts = h.options({ producer: { module: fromIterable(endless()) } });
    const p = await h.start(opts);
    const t0 = Date.now();
    while (Date.now() - t0 < 600) {
      maxAhead = Math.max(maxAhead, pulled - rec.count());
      await sleep(2);
    }
    // Progress, however slow the machine: keep sampling until more than 20 were acked.
    await waitFor(() => {
      maxAhead = Math.max(maxAhead, pulled - rec.count());
      return rec.count() > 20;
    }, 'more than 20 messages acked');
    // maxDemand 10, one processor; the iterator may be one item ahead
    expect(maxAhead).toBeLessThanOrEqual(11);
    expect(rec.failedIds()).toEqual([]);
    await p.stop({ timeout: 3000 });
  });

  test('fromIterable with an async iterable and a transformer', async () => {
    const rec = new AckRecorder();
    async function* source() {
      for (let i = 0; i < 25; i++) {
        if (i % 7 === 0) await sleep(1);
        yield i;
      }
    }
    const opts = h.options({ producer: { module: fromIterable(source()), transformer: (e: number) => rec.message({ id: e }) } });
    await h.start(opts);
    await rec.waitForCount(25);
    expect(rec.successIds()).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  test('a producer may return fewer events and push the rest later through its controller', async () => {
    const rec = new AckRecorder();
    const demands: number[] = [];
    let controller: any;
    const producer = {
      init(c: any) {
        controller = c;
      },
      handleDemand(d: number) {
        demands.push(d);
        if (demands.length === 1) {
          setTimeout(() => controller.push(rec.messages([100, 101, 102])), 50);
          return [];
        }
        return [];
      },
    };
    const p = await h.start(h.options({ producer: { module: producer } }));
    await rec.waitForCount(3);
    expect(rec.successIds()).toEqual([100, 101, 102]);
    expect(demands[0]).toBe(10);
    await p.stop({ timeout: 3000 });
  });

  test('a transformer that throws: the event is logged and counted, the others go on', async () => {
    const rec = new AckRecorder();
    const cap = captureLogger();
    let sent = false;
    const producer = {
      handleDemand() {
        if (sent) return [];
        sent = true;
        return [1, 2, 'bad-event', 3];
      },
    };
    const opts = h.options({
      logger: cap.logger,
      producer: {
        module: producer,
        transformer: (e: unknown) => {
          if (e === 'bad-event') throw new Error('cannot transform');
          return rec.message({ id: e });
        },
      },
    });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    await rec.waitForCount(3);
    expect(rec.successIds()).toEqual([1, 2, 3]);
    await waitFor(() => tel.transformerError.length === 1, 'transformer-error telemetry');
    expect(tel.transformerError[0].event).toBe('bad-event');
    expect(JSON.stringify(tel.transformerError[0].error) + String(tel.transformerError[0].error?.message)).toContain('cannot transform');
    await waitFor(() => cap.warnings(/bad-event/).length > 0, 'the event logged');
    expect(JSON.stringify(cap.warnings(/bad-event/))).toContain('cannot transform');
    expect(p.stats().producers.transformerErrors).toBe(1);
  });
});

describe.each(RUNTIMES)('testMessage / testBatch [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('testMessage resolves {successful, failed} once acked, with batchMode "flush"', async () => {
    const opts = h.options({ batchers: { default: { batchSize: 100, batchTimeout: 20_000 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const ok = await p.testMessage({ id: 1 }, { metadata: { m: 1 } });
    expect(ok.failed).toEqual([]);
    expect(ok.successful.length).toBe(1);
    // As handleBatch returned it (Broadway's test_message): the handler's processed data.
    expect(ok.successful[0].data).toEqual({ id: 1, processed: true });
    expect(ok.successful[0].metadata).toEqual({ m: 1 });
    expect(ok.successful[0].batchMode).toBe('flush');
    expect(tel.batches().map((b) => [b.ids, b.trigger])).toEqual([[[1], 'flush']]);
    const bad = await p.testMessage({ id: 2, fail: 'throw' });
    expect(bad.successful).toEqual([]);
    expect(bad.failed.length).toBe(1);
    expect(bad.failed[0].status).toMatchObject({ kind: 'error', error: { message: 'boom 2' } });
  });

  test('testBatch resolves once every message is acked; bulk by default, flush on request', async () => {
    const opts = h.options({ batchers: { default: { batchSize: 100, batchTimeout: 250 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const r1 = await p.testBatch([{ id: 1 }, { id: 2, fail: 'reason' }, { id: 3 }]);
    expect(r1.successful.map((m: any) => m.data.id)).toEqual([1, 3]);
    expect(r1.failed.map((m: any) => m.data.id)).toEqual([2]);
    expect(tel.batches().map((b) => [b.ids, b.trigger])).toEqual([[[1, 3], 'timeout']]);
    const r2 = await p.testBatch([{ id: 4 }, { id: 5 }], { batchMode: 'flush', metadata: { k: 'v' } });
    expect(r2.successful.map((m: any) => m.data.id)).toEqual([4, 5]);
    expect(r2.successful[0].metadata).toEqual({ k: 'v' });
    expect(tel.batches().map((b) => [b.ids, b.trigger])[1]).toEqual([[4, 5], 'flush']);
  });

  test('testMessage, testBatch and push bypass the transformer and the rate limit', async () => {
    const rec = new AckRecorder();
    const opts = h.options({
      producer: {
        module: new DummyProducer(),
        transformer: () => {
          throw new Error('the transformer must not run');
        },
        rateLimiting: { allowedMessages: 1, interval: 60_000 },
      },
    });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const r = await p.testBatch([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(r.successful.length).toBe(3);
    const r2 = await p.testMessage({ id: 4 });
    expect(r2.successful.length).toBe(1);
    p.push(rec.messages([5, 6, 7]));
    await rec.waitForCount(3);
    expect(tel.transformerError).toEqual([]);
  });
});

describe.each(RUNTIMES)('telemetry, topology, stats [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('telemetry events on diagnostics_channel: processor, message, batch, ack, handle-failed', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 10, batchTimeout: 100 } } });
    const tel = h.telemetry(opts.name, [
      'throughway:processor',
      'throughway:message',
      'throughway:batch',
      'throughway:ack',
      'throughway:handle-failed',
    ]);
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, fail: 'throw' }]));
    await rec.waitForCount(2);
    await sleep(30);
    expect(tel.processor.length).toBe(1);
    expect(tel.processor[0]).toMatchObject({ pipeline: opts.name, processor: 'default', size: 2 });
    expect(typeof tel.processor[0].slot).toBe('number');
    expect(typeof tel.processor[0].durationMs).toBe('number');
    expect(tel.message.map((e) => [e.processor, e.message.data.id])).toEqual([
      ['default', 1],
      ['default', 2],
    ]);
    expect(tel.batch.length).toBe(1);
    const b = tel.batch[0];
    expect(b).toMatchObject({ pipeline: opts.name, batcher: 'default' });
    expect(b.batchInfo).toEqual({ batcher: 'default', batchKey: 'default', partition: null, size: 1, trigger: 'timeout' });
    expect(b.successful.map((m: any) => m.data.id)).toEqual([1]);
    expect(b.failed).toEqual([]);
    expect(typeof b.slot).toBe('number');
    expect(typeof b.durationMs).toBe('number');
    expect(tel.ack.map((e) => [e.stage, e.ref, e.successful.map((m: any) => m.data.id), e.failed.map((m: any) => m.data.id)])).toEqual([
      ['processor', 'r', [], [2]],
      ['batcher', 'r', [1], []],
    ]);
    expect(tel.handleFailed.map((e) => [e.pipeline, e.stage, e.size, e.threw])).toEqual([[opts.name, 'processor', 1, false]]);
  });

  test('topology() lists producers, processors and batchers', async () => {
    const opts = h.options(
      {
        producer: { module: () => new DummyProducer(), concurrency: 2 },
        batchers: {
          a: { concurrency: 2, batchSize: 7, batchTimeout: 300 },
          b: {},
        },
      },
      { concurrency: 2 },
    );
    const p = await h.start(opts);
    const t = p.topology();
    expect(t.producers.length).toBe(1);
    expect(t.producers[0]).toMatchObject({ name: expect.any(String), concurrency: 2 });
    expect(t.processors).toEqual([expect.objectContaining({ name: 'default', concurrency: 2, runtime })]);
    expect(t.batchers).toEqual([
      expect.objectContaining({ name: 'a', concurrency: 2, batchSize: 7, batchTimeout: 300 }),
      expect.objectContaining({ name: 'b', concurrency: 1, batchSize: 100, batchTimeout: 1000 }),
    ]);
    const bare = await h.start(h.options());
    expect(bare.topology().batchers).toEqual([]);
  });

  test('stats() counts per stage', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ batchers: { default: { batchSize: 4, batchTimeout: 20_000 } } });
    const p = await h.start(opts);
    p.push(rec.messages([1, 2, { id: 3, fail: 'throw' }, 4, { id: 5, batchFail: 'reason' }]));
    await rec.waitForCount(5);
    await sleep(30);
    const s = p.stats();
    expect(JSON.parse(JSON.stringify(s))).toEqual(s); // plain data
    // 5 messages in one processor call, 1 failed there; one batch of 4 (1, 2, 4, 5), 1 failed in it
    expect(s.processors).toMatchObject({ calls: 1, tasks: 1, messages: 5, successful: 4, failed: 1, inFlight: 0, threadDeaths: 0 });
    expect(s.batchers.default).toMatchObject({ batches: 1, messages: 4, successful: 3, failed: 1, pending: 0, notReturned: 0 });
    expect(s.acks).toEqual({ successful: 3, failed: 2, errors: 0, failures: { 'Error: boom 3': 1, 'batch rejected 5': 1 } });
    expect(s.producers.transformerErrors).toBe(0);
    expect(s.unacked).toBe(0);
  });
});

// silence unused-import lint in editors
void createMessage;
void Telemetry;

describe.each(RUNTIMES)('a start that fails [%s]', (runtime) => {
  test('terminates the producers whose init succeeded, and the process exits on its own', async () => {
    const runChild = childRunner(fileURLToPath(new URL('./fixtures/', import.meta.url)));
    const child = runChild('start-fails-child.mjs', { runtime });
    const outcome = await exitWithin(child, 20_000);
    const lines = child.output().trim().split('\n');
    expect(outcome.killed, `the child did not exit within 20 s\n${child.output()}`).toBe(false);
    expect(outcome.code, child.output()).toBe(0);
    expect(lines).toEqual(['INIT 0', 'TERMINATED 0', 'REJECTED the broker refused producer 1']);
  });
});
