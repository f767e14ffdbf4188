// Broadway's contract at the ack: acknowledgers, testMessage/testBatch and telemetry see each
// message as the last stage left it, on both runtimes; an acknowledger that declares `idsOnly`
// gets the source's data and no processed data travels back for it.
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, expect, test } from 'vitest';
import { DummyProducer } from '@throughway/core';
import { AckRecorder, RUNTIMES, uniqueName, useHarness } from './helpers.js';

const PROCESSING = new URL('./fixtures/processing.ts', import.meta.url);

describe.each(RUNTIMES)('processed data at the ack [%s]', (runtime) => {
  const h = useHarness(runtime);
  const options = (batchers?: Record<string, unknown>) => ({
    name: uniqueName(`processed-${runtime}`),
    handlers: PROCESSING,
    producer: { module: new DummyProducer() },
    processors: { default: { concurrency: 1, maxDemand: 10, minDemand: 5, runtime } },
    ...(batchers ? { batchers } : {}),
  });

  test('testMessage without batchers resolves with the data and metadata handleMessage produced', async () => {
    const p = await h.start(options());
    const { successful, failed } = await p.testMessage({ id: 1, n: 21 }, { metadata: { source: 't' } });
    expect(failed).toEqual([]);
    expect(successful).toHaveLength(1);
    const m = successful[0]!;
    expect(m.data).toEqual({ id: 1, stage: 'handleMessage', double: 42 });
    expect(m.metadata).toEqual({ source: 't', seen: 'handleMessage' });
    expect(m.status).toEqual({ kind: 'ok' });
    expect(m.batchMode).toBe('flush');
  });

  test('failed messages carry the data they had when they failed, with their status', async () => {
    const p = await h.start(options());
    const { successful, failed } = await p.testBatch([{ id: 1, n: 1, fail: 'reason' }, { id: 2, fail: 'throw' }, { id: 3, n: 2 }]);
    expect(successful.map((m) => m.data)).toEqual([{ id: 3, stage: 'handleMessage', double: 4 }]);
    expect(failed.map((m) => m.data)).toEqual([
      { id: 1, n: 1, fail: 'reason', touched: 'handleMessage' },
      { id: 2, fail: 'throw' },
    ]);
    expect(failed[0]!.status).toEqual({ kind: 'failed', reason: 'rejected 1' });
    expect(failed[1]!.status).toMatchObject({ kind: 'error', error: { name: 'TypeError', message: 'bad input 2' } });
  });

  test('with batchers, the acknowledger gets what handleBatch returned, with its batcher, key and mode', async () => {
    const rec = new AckRecorder();
    const p = await h.start(options({ default: { batchSize: 2, batchTimeout: 20_000 } }));
    p.push([rec.message({ id: 1, n: 5, key: 'k' }), rec.message({ id: 2, n: 6, key: 'k', batchFail: true }, 'r', undefined, { from: 'source' })]);
    await rec.waitForCount(2);
    expect(rec.calls).toHaveLength(1);
    const [ok] = rec.calls[0]!.successful;
    const [bad] = rec.calls[0]!.failed;
    expect(ok.data).toEqual({ id: 1, stage: 'handleBatch', double: 10, batchSize: 2 });
    expect(ok.metadata).toEqual({ seen: 'handleBatch' });
    expect([ok.batcher, ok.batchKey, ok.batchMode, ok.status]).toEqual(['default', 'k', 'bulk', { kind: 'ok' }]);
    expect(bad.data).toEqual({ id: 2, stage: 'handleBatch', double: 12, batchSize: 2 });
    expect(bad.metadata).toEqual({ from: 'source', seen: 'handleBatch' });
    expect(bad.status).toEqual({ kind: 'failed', reason: 'batch rejected 2' });
  });

  test('with batchers, a message failed by handleMessage is acked with the data it failed with', async () => {
    const p = await h.start(options({ default: { batchSize: 10, batchTimeout: 20_000 } }));
    const { successful, failed } = await p.testMessage({ id: 7, n: 1, fail: 'reason' });
    expect(successful).toEqual([]);
    expect(failed.map((m) => [m.data, m.status])).toEqual([[{ id: 7, n: 1, fail: 'reason', touched: 'handleMessage' }, { kind: 'failed', reason: 'rejected 7' }]]);
  });

  test('an idsOnly acknowledger gets the source data back, final statuses and routing; others in the same call get processed data', async () => {
    const idsOnly = new AckRecorder({ idsOnly: true });
    const reader = new AckRecorder();
    const p = await h.start(options({ default: { batchSize: 4, batchTimeout: 20_000 } }));
    p.push([
      idsOnly.message({ id: 1, n: 1, key: 'a' }, 'ids', { row: 1 }),
      reader.message({ id: 2, n: 2, key: 'a' }),
      idsOnly.message({ id: 3, fail: 'reason' }, 'ids', { row: 3 }),
      reader.message({ id: 4, n: 4, key: 'a' }),
      idsOnly.message({ id: 5, n: 5, key: 'a', batchFail: true }, 'ids', { row: 5 }),
    ]);
    await idsOnly.waitForCount(3);
    await reader.waitForCount(2);
    const ids = idsOnly.all();
    expect(ids.map((m) => [m.acknowledger.data, m.data, m.status.kind])).toEqual([
      [{ row: 3 }, { id: 3, fail: 'reason' }, 'failed'],
      [{ row: 1 }, { id: 1, n: 1, key: 'a' }, 'ok'],
      [{ row: 5 }, { id: 5, n: 5, key: 'a', batchFail: true }, 'failed'],
    ]);
    expect(ids[1].batchKey).toBe('a');
    expect(ids[1].metadata).toEqual({});
    expect(reader.all().map((m) => m.data)).toEqual([
      { id: 2, stage: 'handleBatch', double: 4, batchSize: 4 },
      { id: 4, stage: 'handleBatch', double: 8, batchSize: 4 },
    ]);
  });

  test('one call of interleaved batch keys: every message reaches its own batch in order, and its acknowledger with its own data', async () => {
    // Processor threads send a call's values grouped by batch key and its keys as a dictionary;
    // the main thread must still see each message with its own key and data.
    const idsOnly = new AckRecorder({ idsOnly: true });
    const reader = new AckRecorder();
    const opts = options({ default: { batchSize: 4, batchTimeout: 20_000 } });
    Object.assign(opts.processors.default, { maxDemand: 64, minDemand: 32 });
    const tel = h.telemetry(opts.name);
    const p = await h.start(opts);
    const keys = ['a', 'b', 'c'];
    // 24 that go on (8 a key: two full batches each) and 4 that handleMessage fails, among them.
    const datas = Array.from({ length: 24 }, (_, i) => ({ id: i + 1, n: i + 1, key: keys[i % 3] }) as Record<string, unknown>);
    for (const at of [2, 9, 15, 20]) datas.splice(at, 0, { id: 100 + at, n: 1, key: keys[at % 3], fail: 'reason' });
    p.push(datas.map((d, i) => (i % 2 ? reader.message(d) : idsOnly.message(d, 'ids', { row: d.id }))));
    await idsOnly.waitForCount(14);
    await reader.waitForCount(14);

    const batches = tel.batches();
    for (const key of keys) {
      const mine = batches.filter((b) => b.key === key);
      const expected = datas.filter((d) => d.key === key && !d.fail).map((d) => d.id);
      expect(mine.map((b) => b.ids), key).toEqual([expected.slice(0, 4), expected.slice(4)]);
    }
    const sent = datas.map((d, i) => ({ ...d, reader: i % 2 === 1 }));
    const byId = (list: any[]) => new Map(list.map((m) => [(m.data as { id: number }).id, m]));
    const readers = byId(reader.all());
    const plain = byId(idsOnly.all());
    for (const d of sent) {
      const m = (d.reader ? readers : plain).get(d.id as number);
      expect(m, `message ${String(d.id)}`).toBeDefined();
      if (d.fail) {
        expect(m.status).toEqual({ kind: 'failed', reason: `rejected ${String(d.id)}` });
        if (d.reader) expect(m.data).toEqual({ id: d.id, n: 1, key: d.key, fail: 'reason', touched: 'handleMessage' });
        continue;
      }
      expect([m.status.kind, m.batchKey], `message ${String(d.id)}`).toEqual(['ok', d.key]);
      // A reader gets what handleBatch made of its own message; idsOnly the source's data.
      expect(m.data).toEqual(d.reader ? { id: d.id, stage: 'handleBatch', double: (d.n as number) * 2, batchSize: 4 } : { id: d.id, n: d.n, key: d.key });
    }
  });

  test('a message created without metadata shares one frozen empty object; each handler gets metadata of its own to change', async () => {
    const reader = new AckRecorder();
    const first = reader.message({ id: 1, n: 1, tag: true });
    const second = reader.message({ id: 2, n: 2, tag: true });
    expect(first.metadata).toBe(second.metadata);
    expect(Object.isFrozen(first.metadata)).toBe(true);
    expect(first.metadata).toEqual({});
    const given = { origin: 'q' };
    expect(reader.message({ id: 3 }, 'r', undefined, given).metadata).toBe(given);

    const p = await h.start(options());
    p.push([first, second]);
    await reader.waitForCount(2);
    // Each handler added to its own metadata; the shared object is untouched.
    expect(reader.all().map((m) => [m.status.kind, m.metadata])).toEqual([
      ['ok', { tag: 1, seen: 'handleMessage' }],
      ['ok', { tag: 2, seen: 'handleMessage' }],
    ]);
    expect(first.metadata).toEqual({});
  });

  test('processed data is a getter, decoded once on first read; JSON.stringify includes it', async () => {
    const seen: unknown[] = [];
    const module = {
      ack(_ref: unknown, successful: any[]) {
        for (const m of successful) {
          // Not a stored value: nothing is decoded until `data` is read.
          seen.push(Object.getOwnPropertyDescriptor(m, 'data') === undefined && 'data' in m);
          const first = m.data;
          seen.push(first, m.data === first, JSON.parse(JSON.stringify(m)).data);
        }
      },
    };
    const rec = new AckRecorder();
    const p = await h.start(options());
    p.push([{ ...rec.message({ id: 9, n: 1 }), acknowledger: { module, ref: 'lazy' } }]);
    await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(4);
    const processed = { id: 9, stage: 'handleMessage', double: 2 };
    expect(seen).toEqual([true, processed, true, processed]);
  });

  test('throughway:message and throughway:batch carry the processed data', async () => {
    const opts = options({ default: { batchSize: 1, batchTimeout: 20_000 } });
    const messageEvents: unknown[] = [];
    const batchEvents: unknown[] = [];
    const onMessage = (e: any) => e.pipeline === opts.name && messageEvents.push(e.message.data);
    const onBatch = (e: any) => e.pipeline === opts.name && batchEvents.push(e.successful.map((m: any) => m.data));
    diagnostics_channel.subscribe('throughway:message', onMessage);
    diagnostics_channel.subscribe('throughway:batch', onBatch);
    try {
      const p = await h.start(opts);
      await p.testMessage({ id: 4, n: 3 });
      expect(messageEvents).toEqual([{ id: 4, stage: 'handleMessage', double: 6 }]);
      expect(batchEvents).toEqual([[{ id: 4, stage: 'handleBatch', double: 6, batchSize: 1 }]]);
    } finally {
      diagnostics_channel.unsubscribe('throughway:message', onMessage);
      diagnostics_channel.unsubscribe('throughway:batch', onBatch);
    }
  });
});
