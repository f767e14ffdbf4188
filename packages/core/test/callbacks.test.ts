// handleMessage / prepareMessages failures (issue 2, second "Semantics" bullet), for both runtimes.
import { describe, expect, test } from 'vitest';
import { AckRecorder, RUNTIMES, readLog, statusText, tmpLog, useHarness } from './helpers.js';

describe.each(RUNTIMES)('callbacks [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('handleMessage that throws fails only that message, with kind "error" and {name, message}', async () => {
    const rec = new AckRecorder();
    const p = await h.start(h.options());
    p.push(rec.messages([1, { id: 2, fail: 'throw' }, 3]));
    await rec.waitForCount(3);
    expect(rec.shape()).toEqual([[[1, 3], [2]]]);
    const failed = rec.find(2);
    expect(failed.status.kind).toBe('error');
    expect(failed.status.error).toMatchObject({ name: 'Error', message: 'boom 2' });
    for (const id of [1, 3]) expect(rec.find(id).status).toEqual({ kind: 'ok' });
  });

  test('errors keep name, message, stack and code; a custom class keeps its name', async () => {
    const rec = new AckRecorder();
    const p = await h.start(h.options());
    p.push(rec.messages([{ id: 1, fail: 'code' }, { id: 2, fail: 'custom' }, { id: 3, fail: 'errorReason' }]));
    await rec.waitForCount(3);
    const coded = rec.find(1).status;
    expect(coded.kind).toBe('error');
    expect(coded.error).toMatchObject({ name: 'TypeError', message: 'bad input 1', code: 'E_BAD_INPUT' });
    expect(typeof coded.error.stack).toBe('string');
    expect(coded.error.stack).toContain('bad input 1');
    const custom = rec.find(2).status;
    expect(custom.kind).toBe('error');
    expect(custom.error).toMatchObject({ name: 'ValidationError', message: 'invalid 2' });
    // Message.failed(m, new RangeError(...)): an Error reason is kept as { name, message }
    const reason = rec.find(3).status;
    expect(reason.kind).toBe('failed');
    expect(reason.reason).toMatchObject({ name: 'RangeError', message: 'too big 3' });
    expect(JSON.parse(JSON.stringify(reason.reason))).toMatchObject({ name: 'RangeError', message: 'too big 3' });
  });

  test('Message.failed(m, reason) fails the message with that reason', async () => {
    const rec = new AckRecorder();
    const p = await h.start(h.options());
    p.push(rec.messages([{ id: 1, fail: 'reason' }, 2]));
    await rec.waitForCount(2);
    expect(rec.shape()).toEqual([[[2], [1]]]);
    expect(rec.find(1).status).toEqual({ kind: 'failed', reason: 'rejected 1' });
  });

  test('a non-message return from handleMessage fails that message with a clear reason', async () => {
    const rec = new AckRecorder();
    const p = await h.start(h.options());
    p.push(rec.messages([{ id: 1, fail: 'junk' }, 2, { id: 3, fail: 'undefined' }]));
    await rec.waitForCount(3);
    expect(rec.shape()).toEqual([[[2], [1, 3]]]);
    for (const id of [1, 3]) {
      const m = rec.find(id);
      expect(m.status.kind).not.toBe('ok');
      expect(statusText(m)).toMatch(/expected a Message/);
    }
  });

  test('a message routed to an unknown batcher fails with a reason naming the known batchers', async () => {
    const rec = new AckRecorder();
    const opts = h.options({
      batchers: {
        default: { batchSize: 10, batchTimeout: 100 },
        audit: { batchSize: 10, batchTimeout: 100 },
      },
    });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([{ id: 1, batcher: 'nope' }, { id: 2 }, { id: 3, batcher: 'audit' }]));
    await rec.waitForCount(3);
    const m = rec.find(1);
    expect(rec.failedIds()).toEqual([1]);
    expect(m.status.kind).not.toBe('ok');
    const text = statusText(m);
    expect(text).toContain('nope');
    expect(text).toContain('default');
    expect(text).toContain('audit');
    expect(tel.batches().flatMap((b) => b.ids)).not.toContain(1);
    expect(rec.successIds().sort()).toEqual([2, 3]);
  });

  test('without batchers, putBatcher is ignored', async () => {
    const rec = new AckRecorder();
    const p = await h.start(h.options());
    p.push(rec.messages([{ id: 1, batcher: 'nope' }]));
    await rec.waitForCount(1);
    expect(rec.shape()).toEqual([[[1], []]]);
  });

  test('failed messages never reach handleBatch', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({ context: { log }, batchers: { default: { batchSize: 10, batchTimeout: 100 } } });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    p.push(rec.messages([1, { id: 2, fail: 'throw' }, { id: 3, fail: 'reason' }, { id: 4, fail: 'junk' }, 5]));
    await rec.waitForCount(5);
    expect(tel.batches().map((b) => b.ids)).toEqual([[1, 5]]);
    const batchLines = readLog(log).filter((l) => l.ev === 'batch');
    expect(batchLines.map((l) => l.ids)).toEqual([[1, 5]]);
    expect(batchLines[0].allProcessed).toBe(true);
    expect(rec.failedIds()).toEqual([2, 3, 4]);
  });

  test('prepareMessages that throws fails every message of the call; handleMessage is not called', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const p = await h.start(h.options({ context: { log } }));
    p.push(rec.messages([1, { id: 2, prepare: 'throw' }, 3]));
    await rec.waitForCount(3);
    expect(rec.shape()).toEqual([[[], [1, 2, 3]]]);
    for (const id of [1, 2, 3]) {
      expect(rec.find(id).status.kind).not.toBe('ok');
      expect(statusText(rec.find(id))).toContain('prepare exploded');
    }
    expect(readLog(log).filter((l) => l.ev === 'message')).toEqual([]);
    // the pipeline goes on
    p.push(rec.messages([4, 5]));
    await rec.waitForCount(5);
    expect(rec.shape()[1]).toEqual([[4, 5], []]);
  });

  test('prepareMessages that returns another number of messages fails the whole call', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const p = await h.start(h.options({ context: { log } }));
    p.push(rec.messages([1, 2, { id: 3, prepare: 'length' }]));
    await rec.waitForCount(3);
    expect(rec.shape()).toEqual([[[], [1, 2, 3]]]);
    expect(readLog(log).filter((l) => l.ev === 'message')).toEqual([]);
    p.push(rec.messages([4]));
    await rec.waitForCount(4);
    expect(rec.shape()[1]).toEqual([[4], []]);
  });

  test('a message prepareMessages marks failed still goes through handleMessage and is acked failed', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const p = await h.start(h.options({ context: { log } }));
    p.push(rec.messages([1, { id: 2, prepare: 'mark' }]));
    await rec.waitForCount(2);
    expect(rec.shape()).toEqual([[[1], [2]]]);
    expect(rec.find(2).status).toEqual({ kind: 'failed', reason: 'marked in prepareMessages' });
    expect(readLog(log).filter((l) => l.ev === 'message').map((l) => l.id)).toEqual([1, 2]);
  });

  test('prepareMessages runs once per processor call, before its handleMessage calls', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const p = await h.start(h.options({ context: { log } }));
    p.push(rec.messages([1, 2, 3, 4, 5, 6, 7]));
    await rec.waitForCount(7);
    const lines = readLog(log).filter((l) => l.ev === 'prepare' || l.ev === 'message');
    expect(lines.map((l) => (l.ev === 'prepare' ? `prepare ${l.ids.join(',')}` : `message ${l.id}`))).toEqual([
      'prepare 1,2,3,4,5',
      'message 1',
      'message 2',
      'message 3',
      'message 4',
      'message 5',
      'prepare 6,7',
      'message 6',
      'message 7',
    ]);
  });
});
