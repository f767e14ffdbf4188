// Poison isolation (issue 9, finding 2): when a message kills its processor thread, the messages
// of the dead task are retried one at a time on a separate thread, so that only the messages
// that kill a thread on their own fail with ERR_THROUGHWAY_THREAD_DIED. Real worker threads;
// the inline runtime has no thread to lose (a process.exit there ends the process).
import { describe, expect, test } from 'vitest';
import { AckRecorder, captureLogger, readLog, statusText, tmpLog, useHarness } from './helpers.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('threads runtime: a message that kills its thread fails alone', () => {
  const h = useHarness('threads');

  /** One call of `ids` (maxDemand - minDemand = its size), in which `poison` messages die. */
  async function oneCall(ids: number[], poison: Record<number, 'exit' | 'uncaught' | 'oom'>, over: Record<string, unknown> = {}, processors: Record<string, unknown> = {}) {
    const rec = new AckRecorder();
    const log = tmpLog();
    const cap = captureLogger();
    const n = ids.length;
    const opts = h.options({ context: { log }, logger: cap.logger, ...over }, { concurrency: 1, maxDemand: 2 * n, minDemand: n, ...processors });
    const p = await h.start(opts);
    p.push(rec.messages(ids.map((id) => (poison[id] ? { id, die: poison[id] } : { id }))));
    await rec.waitForCount(n, 40_000);
    return { p, rec, log, cap };
  }

  function deathLines(cap: ReturnType<typeof captureLogger>) {
    return cap.lines.filter((l) => l.level >= 50 && /processor thread/.test(l.msg));
  }

  test('a call of 20 with one message that exits: 19 acked successful, the poison failed with THREAD_DIED', async () => {
    const ids = range(1, 20);
    const { p, rec, log, cap } = await oneCall(ids, { 8: 'exit' });
    // one ack for the call, order kept, the poison alone failed
    expect(rec.shape()).toEqual([[ids.filter((id) => id !== 8), [8]]]);
    const poison = rec.find(8);
    expect(poison.status.kind).toBe('error');
    expect(poison.status.error.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(statusText(poison)).toMatch(/exit/);
    // the survivors ran handleMessage normally: processed data reached the handler, once in isolation
    const lines = readLog(log);
    const dead = lines.find((l) => l.ev === 'message' && l.id === 1)!.tid;
    const isolated = lines.filter((l) => l.ev === 'message' && l.tid !== dead);
    expect(isolated.map((l) => l.id)).toEqual(ids.filter((id) => id !== 8));
    // prepareMessages ran once per call: the original call of 20, then one call per retried message
    const prepares = lines.filter((l) => l.ev === 'prepare').map((l) => l.ids);
    expect(prepares[0]).toEqual(ids);
    expect(prepares.slice(1)).toEqual(ids.map((id) => [id]));
    // two deaths (the task's, then the poison's alone), each counted and logged once
    expect(p.stats().processors.threadDeaths).toBe(2);
    const logged = deathLines(cap);
    expect(logged.length).toBe(2);
    expect(logged[0].msg).toMatch(/retried one at a time/);
    expect(logged[0].messages).toBe(20);
    expect(logged[1].msg).toMatch(/on its own/);
    expect(p.stats().processors).toMatchObject({ messages: 20, successful: 19, failed: 1 });
    expect(p.stats().acks).toMatchObject({ successful: 19, failed: 1 });
    // the pipeline goes on, and stop() tears down every thread that ran setup, the isolation one too
    p.push(rec.messages([21, 22]));
    await rec.waitForCount(22, 30_000);
    expect(rec.shape()[1]).toEqual([[21, 22], []]);
    expect((await p.stop({ timeout: 10_000 })).unacked).toBe(0);
    const after = readLog(log);
    const torn = after.filter((l) => l.ev === 'teardown').map((l) => l.tid);
    expect(torn).toContain(isolated[isolated.length - 1].tid);
    expect(torn).toContain(after.find((l) => l.ev === 'message' && l.id === 21)!.tid);
  });

  test('two poison messages in one call (exit and an uncaught error in a timer): only those two fail', async () => {
    const ids = range(1, 20);
    const { p, rec, cap } = await oneCall(ids, { 3: 'exit', 15: 'uncaught' });
    expect(rec.shape()).toEqual([[ids.filter((id) => id !== 3 && id !== 15), [3, 15]]]);
    expect(rec.find(3).status.error.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(rec.find(15).status.error.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(statusText(rec.find(15))).toMatch(/uncaught in thread 15/);
    expect(p.stats().processors.threadDeaths).toBe(3);
    expect(deathLines(cap).length).toBe(3);
  });

  test('a call of nothing but poison ends: each message retried alone once, each failed', async () => {
    const ids = range(1, 5);
    const { p, rec, cap } = await oneCall(ids, { 1: 'exit', 2: 'exit', 3: 'exit', 4: 'exit', 5: 'exit' });
    expect(rec.shape()).toEqual([[[], ids]]);
    for (const id of ids) expect(rec.find(id).status.error.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(p.stats().processors.threadDeaths).toBe(6);
    expect(deathLines(cap).length).toBe(6);
  });

  test('out of memory under resourceLimits: only the poison fails', async () => {
    const ids = range(1, 10);
    const { p, rec } = await oneCall(ids, { 4: 'oom' }, {}, { resourceLimits: { maxOldGenerationSizeMb: 48 } });
    expect(rec.shape()).toEqual([[ids.filter((id) => id !== 4), [4]]]);
    expect(rec.find(4).status.error.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(statusText(rec.find(4))).toMatch(/memory/i);
    expect(p.stats().processors.threadDeaths).toBe(2);
  });

  test('with a batcher: the survivors reach handleBatch processed, routed, in order', async () => {
    const ids = range(1, 20);
    const batchers = { default: { concurrency: 1, batchSize: 19, batchTimeout: 60_000 } };
    const { p, rec, log } = await oneCall(ids, { 11: 'exit' }, { batchers });
    expect(rec.shape()).toEqual([[[], [11]], [ids.filter((id) => id !== 11), []]]);
    const batches = readLog(log).filter((l) => l.ev === 'batch');
    expect(batches.length).toBe(1);
    expect(batches[0].ids).toEqual(ids.filter((id) => id !== 11));
    expect(batches[0].allProcessed).toBe(true);
    expect(batches[0].info).toMatchObject({ batcher: 'default', size: 19, trigger: 'size' });
    expect(p.stats().batchers.default).toMatchObject({ batches: 1, successful: 19, failed: 0 });
  });

  test('routing, failures and handleFailed of the survivors are those of a normal call', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const batchers = { a: { batchSize: 2, batchTimeout: 60_000 }, b: { batchSize: 1, batchTimeout: 60_000 } };
    const opts = h.options({ context: { log, handleFailed: 'annotate' }, logger: captureLogger().logger, batchers }, { maxDemand: 10, minDemand: 5 });
    const p = await h.start(opts);
    p.push(
      rec.messages([
        { id: 1, batcher: 'a', batchKey: 'k1' },
        { id: 2, fail: 'throw' },
        { id: 3, die: 'exit' },
        { id: 4, batcher: 'b' },
        { id: 5, batcher: 'a', batchKey: 'k1' },
      ]),
    );
    await rec.waitForCount(5, 40_000);
    expect(rec.failedIds().sort()).toEqual([2, 3]);
    expect(rec.find(2).status).toEqual({ kind: 'failed', reason: { handledBy: 'handleFailed', id: 2 } });
    expect(rec.find(3).status.error.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(rec.successIds().sort()).toEqual([1, 4, 5]);
    const batches = readLog(log).filter((l) => l.ev === 'batch');
    expect(batches.map((b) => [b.batcher, b.info.batchKey, b.ids]).sort()).toEqual([
      ['a', 'k1', [1, 5]],
      ['b', 'default', [4]],
    ]);
    expect(batches.every((b) => b.allProcessed)).toBe(true);
  });

  test('a batch worker that dies fails only the batch it was running; the batches queued behind it run on its replacement', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const cap = captureLogger();
    // one batch per message on one slot; the slow first two let the rest queue up and go to the
    // thread together, so 3 dies with batches done before it and not started after it
    const batchers = { default: { concurrency: 1, batchSize: 1, batchTimeout: 60_000 } };
    const p = await h.start(h.options({ context: { log }, logger: cap.logger, batchers }, { maxDemand: 20, minDemand: 10 }));
    const datas = [{ id: 0, batchSleepMs: 400 }, { id: 1, batchSleepMs: 400 }, { id: 2 }, { id: 3, batchFail: 'exit' }, { id: 4 }, { id: 5 }];
    p.push(rec.messages(datas));
    await rec.waitForCount(6, 40_000);
    expect(rec.failedIds()).toEqual([3]);
    expect(rec.find(3).status.error.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(rec.successIds().sort()).toEqual([0, 1, 2, 4, 5]);
    // one log line for the one death; the batch order of the slot is kept
    expect(cap.lines.filter((l) => l.level >= 50 && /batch worker/.test(l.msg)).length).toBe(1);
    expect(rec.calls.map((c) => [...c.successful, ...c.failed].map((m: any) => m.data.id)).flat()).toEqual([0, 1, 2, 3, 4, 5]);
    const batches = readLog(log).filter((l) => l.ev === 'batch').map((l) => l.ids[0]);
    expect(batches.filter((id: number) => id === 3)).toEqual([3]); // the culprit is not run again
    expect(p.stats().batchers.default).toMatchObject({ batches: 6, successful: 5, failed: 1 });
    expect(p.stats().processors.threadDeaths).toBe(0);
    expect((await p.stop({ timeout: 10_000 })).unacked).toBe(0);
  });

  test('partitionBy: survivors of each partition are handled and acked in order', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const users = ['u1', 'u2'];
    const cap = captureLogger();
    const opts = h.options({ context: { log }, logger: cap.logger }, { concurrency: 2, maxDemand: 8, minDemand: 4, partitionBy: (m: any) => m.data.user });
    const p = await h.start(opts);
    const datas = range(0, 23).map((id) => ({ id, user: users[id % 2], ...(id === 9 || id === 14 ? { die: 'exit' as const } : {}) }));
    p.push(rec.messages(datas));
    await rec.waitForCount(datas.length, 40_000);
    expect(rec.failedIds().sort((a: any, b: any) => a - b)).toEqual([9, 14]);
    // both slots isolated at once, through the one isolation thread: 2 deaths alone, and 1 or 2
    // task deaths (the two tasks may have shared a thread)
    const deaths = p.stats().processors.threadDeaths;
    expect([3, 4]).toContain(deaths);
    expect(deathLines(cap).length).toBe(deaths);
    const lines = readLog(log).filter((l) => l.ev === 'message');
    for (const user of users) {
      const expected = datas.filter((d) => d.user === user && !d.die).map((d) => d.id);
      expect(rec.successIds().filter((id: any) => id % 2 === users.indexOf(user)), `ack order of ${user}`).toEqual(expected);
      // the last run of each survivor (the one whose outcome counted) comes in order
      const last = new Map<number, number>();
      lines.filter((l) => l.user === user && !datas[l.id]!.die).forEach((l, at) => last.set(l.id, at));
      expect([...last.entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id), `handling order of ${user}`).toEqual(expected);
    }
  });
});

describe('threads runtime: a message whose data cannot be cloned into a thread fails alone', () => {
  const h = useHarness('threads');

  test('a call of 10 with a function in one message and a symbol in another: 8 processed, those two failed with DATA_NOT_CLONEABLE, no death', async () => {
    const rec = new AckRecorder();
    const cap = captureLogger();
    const ids = range(1, 10);
    const p = await h.start(h.options({ logger: cap.logger }, { concurrency: 1, maxDemand: 20, minDemand: 10 }));
    p.push(rec.messages(ids.map((id) => (id === 4 ? { id, fn: () => 1 } : id === 7 ? { id, tag: Symbol('seven') } : { id }))));
    await rec.waitForCount(10, 30_000);
    // one ack for the call, in order, the two refused messages failed and nothing else
    expect(rec.shape()).toEqual([[ids.filter((id) => id !== 4 && id !== 7), [4, 7]]]);
    for (const id of [4, 7]) {
      const m = rec.find(id);
      expect(m.status.kind).toBe('error');
      expect(m.status.error.code).toBe('ERR_THROUGHWAY_DATA_NOT_CLONEABLE');
      expect(statusText(m)).toMatch(/cannot be copied into a processor thread .*could not be cloned/);
    }
    // not a thread death: counted as failed messages only
    expect(p.stats().processors.threadDeaths).toBe(0);
    expect(p.stats().processors).toMatchObject({ messages: 10, successful: 8, failed: 2 });
    // logged once, at error level, with the count, not once per message
    const lines = cap.lines.filter((l) => l.level >= 50);
    expect(lines).toHaveLength(1);
    expect(lines[0].msg).toBe('2 messages failed: their data or metadata cannot be copied into a processor thread');
    expect(lines[0]).toMatchObject({ stage: 'dispatch', messages: 2 });
    expect(lines[0].err.code).toBe('ERR_THROUGHWAY_DATA_NOT_CLONEABLE');
    // the pipeline goes on with whole calls
    p.push(rec.messages([11, 12]));
    await rec.waitForCount(12, 30_000);
    expect(rec.shape()[1]).toEqual([[11, 12], []]);
    expect((await p.stop({ timeout: 10_000 })).unacked).toBe(0);
  });

  test('a getter that throws while the data is copied fails its own message with DATA_NOT_CLONEABLE, not as a thread death', async () => {
    const rec = new AckRecorder();
    const cap = captureLogger();
    const ids = range(1, 10);
    const p = await h.start(h.options({ logger: cap.logger }, { concurrency: 1, maxDemand: 20, minDemand: 10 }));
    const explosive = (id: number) => {
      const data: Record<string, unknown> = { id };
      Object.defineProperty(data, 'secret', { enumerable: true, get: () => { throw new Error(`secret ${id} is locked`); } });
      return data;
    };
    p.push(rec.messages(ids.map((id) => (id === 3 || id === 9 ? explosive(id) : { id }))));
    await rec.waitForCount(10, 30_000);
    expect(rec.shape()).toEqual([[ids.filter((id) => id !== 3 && id !== 9), [3, 9]]]);
    for (const id of [3, 9]) {
      const m = rec.find(id);
      expect(m.status.error.code).toBe('ERR_THROUGHWAY_DATA_NOT_CLONEABLE');
      expect(statusText(m)).toMatch(new RegExp(`cannot be copied into a processor thread \\(secret ${id} is locked\\)`));
    }
    // no thread died, so none is counted or logged as dead
    expect(p.stats().processors.threadDeaths).toBe(0);
    expect(p.stats().processors).toMatchObject({ messages: 10, successful: 8, failed: 2 });
    const lines = cap.lines.filter((l) => l.level >= 50);
    expect(lines.map((l) => l.msg)).toEqual(['2 messages failed: their data or metadata cannot be copied into a processor thread']);
    expect((await p.stop({ timeout: 10_000 })).unacked).toBe(0);
  });
});
