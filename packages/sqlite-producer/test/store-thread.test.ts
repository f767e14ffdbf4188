// Queue mode with the store on its own thread (`thread: true`), driven by hand.
import type { Worker } from 'node:worker_threads';
import { describe, expect, test } from 'vitest';
import { countPending, deadLetters, enqueue, queueAcknowledger, sqliteQueue } from '@throughway/sqlite-producer';
import { ack, controller, fail, tmpDb, tmpDbWith, waitFor } from './helpers.js';

describe('store thread (thread: true)', () => {
  test('claims, acks, retries and dead-letters through the thread; rows arrive by push; terminate ends the thread', async () => {
    const file = tmpDbWith(['a', 'b', 'c', 'd']);
    enqueue(file, [Buffer.from([7, 8])]);
    const c = controller();
    const source = sqliteQueue({ database: file, thread: true, maxAttempts: 2, backoff: () => 0, pollInterval: 5 });
    const p = source(0);
    await p.init(c);
    expect(p.handleDemand(5)).toEqual([]);
    await waitFor(() => c.pushed.length === 5, 'five rows pushed');
    expect(c.pushed.map((m) => m.data)).toEqual(['a', 'b', 'c', 'd', Buffer.from([7, 8])]);
    expect(Buffer.isBuffer(c.pushed[4]!.data)).toBe(true);
    expect(c.pushed[0]!.metadata).toEqual({ id: 1, attempts: 1, deliveries: 0 });
    const [a, b, cc, d, e] = c.pushed;
    const bAck = b!.acknowledger!;
    bAck.data = queueAcknowledger.configure!(bAck.ref, bAck.data, { retry: false });
    await ack([a!, e!], [fail(b!, 'permanent'), fail(cc!, 'again')]);
    expect(p.stats()).toMatchObject({ claimed: 5, acked: 2, retried: 1, deadLettered: 1 });
    expect(deadLetters(file).map((x) => x.id)).toEqual([2]);
    c.pushed.length = 0;
    p.handleDemand(1);
    await waitFor(() => c.pushed.length === 1, 'retried row pushed');
    expect(c.pushed[0]!.metadata).toEqual({ id: 3, attempts: 2, deliveries: 0 });
    await ack([c.pushed[0]!, d!]);
    expect(countPending(file)).toBe(0);
    await p.prepareForDraining();
    await p.terminate();
    await expect(ack([a!])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_PRODUCER_TERMINATED' });
  });

  test('a store thread that dies: acks and claims fail with ERR_THROUGHWAY_SQLITE_STORE_THREAD, nothing hangs, the rows stay in the queue', async () => {
    const file = tmpDbWith(['a', 'b', 'c']);
    const errors: unknown[] = [];
    const c = controller();
    const started: Worker[] = [];
    const onWorker = (worker: Worker) => started.push(worker);
    process.on('worker', onWorker);
    const p = sqliteQueue({ database: file, thread: true, prefetch: 0, pollInterval: 5, onError: (error) => errors.push(error) })(0);
    try {
      await p.init(c);
    } finally {
      process.off('worker', onWorker);
    }
    expect(started).toHaveLength(1);
    p.handleDemand(1);
    await waitFor(() => c.pushed.length === 1, 'one row pushed');
    // The thread ends mid-run, without closing its connection, as a crash of it would.
    await started[0]!.terminate();
    await expect(ack([c.pushed[0]!])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_SQLITE_STORE_THREAD', message: expect.stringContaining('store thread died') });
    p.handleDemand(1);
    await waitFor(() => errors.length > 0, 'the failed claim reported to onError');
    expect(errors[0]).toMatchObject({ code: 'ERR_THROUGHWAY_SQLITE_STORE_THREAD' });
    expect(c.pushed).toHaveLength(1);
    expect(p.stats()).toMatchObject({ claimed: 1, acked: 0 });
    const ended = await Promise.resolve(p.terminate()).then(() => 'resolved', (error: { code?: string }) => error.code);
    expect(['resolved', 'ERR_THROUGHWAY_SQLITE_STORE_THREAD']).toContain(ended);
    expect(countPending(file)).toBe(3);
  });

  test('an init failure on the thread rejects init with the error', async () => {
    const file = tmpDb();
    const p = sqliteQueue({ database: file, thread: true, migrate: false })(0);
    await expect(p.init(controller())).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_SQLITE_SCHEMA' });
  });
});
