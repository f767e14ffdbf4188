// Queue and cursor producers inside real pipelines, in both runtimes.
import { describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { countPending, cursorFailures, deadLetters, enqueue, migrate, queueCounts, readCheckpoint, sqliteCursor, sqliteQueue } from '@throughway/sqlite-producer';
import { open, sleep, tmpDb, waitFor } from './helpers.js';

const handlers = new URL('./fixtures/outcome-handlers.mjs', import.meta.url);
const RUNTIMES = ['inline', 'threads'] as const;

const QUEUE_CASES = RUNTIMES.flatMap((runtime) => [
  { runtime, thread: false },
  { runtime, thread: true },
]);

describe.each(QUEUE_CASES)('queue through a pipeline [$runtime, store thread: $thread]', ({ runtime, thread }) => {
  test('every row is processed and acked; the queue ends empty; stop() closes everything', async () => {
    const file = tmpDb();
    migrate(file);
    enqueue(file, Array.from({ length: 5000 }, (_, i) => `ok:${i}`));
    // A lease longer than the wait below: on a loaded machine the inline runtime has taken 30 s
    // for these rows, and an expired lease would (rightly) hand rows out twice.
    const source = sqliteQueue({ database: file, pollInterval: 10, thread, leaseMs: 120_000 });
    const pipeline = await Pipeline.start({ name: `sqlite-${runtime}-${thread}-all`, handlers, producer: { module: source, concurrency: 2 }, processors: { default: { runtime, concurrency: 2 } } });
    await waitFor(() => source.stats().acked === 5000, 'all rows acked', 55_000);
    const result = await pipeline.stop();
    expect(result.unacked).toBe(0);
    expect(countPending(file)).toBe(0);
    expect(source.stats()).toEqual({ claimed: 5000, acked: 5000, committed: 0, retried: 0, deadLettered: 0, errors: 0 });
    // Each row was claimed by exactly one of the two producers. (How the rows split between
    // them is up to SQLite's busy handler, which is not fair: one producer may take them all.)
    expect(source.producers).toHaveLength(2);
    expect(source.producers.reduce((sum, p) => sum + p.stats().claimed, 0)).toBe(5000);
  });

  test('rows enqueued while the pipeline runs are picked up by polling', async () => {
    const file = tmpDb();
    migrate(file);
    const source = sqliteQueue({ database: file, pollInterval: 10, thread });
    const pipeline = await Pipeline.start({ name: `sqlite-${runtime}-${thread}-poll`, handlers, producer: { module: source }, processors: { default: { runtime, concurrency: 1 } } });
    await sleep(50);
    enqueue(file, ['ok:a', 'ok:b']);
    await waitFor(() => source.stats().acked === 2, 'two rows acked');
    enqueue(file, ['ok:c']);
    await waitFor(() => source.stats().acked === 3, 'third row acked');
    await pipeline.stop();
    expect(countPending(file)).toBe(0);
  });

  test('failures are retried with backoff then dead-lettered; configureAck { retry: false } dead-letters at once', async () => {
    const file = tmpDb();
    migrate(file);
    enqueue(file, ['ok:1', 'fail:2', 'permanent:3', 'throw:4', 'ok:5']);
    const source = sqliteQueue({ database: file, pollInterval: 5, maxAttempts: 3, backoff: { baseMs: 20, maxMs: 50 }, thread });
    const pipeline = await Pipeline.start({ name: `sqlite-${runtime}-${thread}-fail`, handlers, producer: { module: source }, processors: { default: { runtime, concurrency: 1 } } });
    await waitFor(() => countPending(file) === 0, 'queue empty');
    await pipeline.stop();
    const dead = deadLetters(file);
    expect(dead.map((d) => [d.id, d.payload, d.attempts, d.last_error])).toEqual([
      [2, 'fail:2', 3, 'refused fail:2'],
      [3, 'permanent:3', 1, 'permanent failure'],
      [4, 'throw:4', 3, 'thrown for throw:4'],
    ]);
    expect(source.stats()).toMatchObject({ acked: 2, retried: 4, deadLettered: 3 });
  });

  test('stop() while rows are in flight: what was emitted is acked; nothing is left leased', async () => {
    const file = tmpDb();
    migrate(file);
    enqueue(file, Array.from({ length: 20_000 }, (_, i) => `ok:${i}`));
    const source = sqliteQueue({ database: file, prefetch: 100, thread });
    const pipeline = await Pipeline.start({ name: `sqlite-${runtime}-${thread}-stop`, handlers, producer: { module: source }, processors: { default: { runtime, concurrency: 2 } } });
    await waitFor(() => source.stats().acked > 0, 'some acks');
    const { unacked } = await pipeline.stop();
    expect(unacked).toBe(0);
    const counts = queueCounts(file);
    expect(counts.leased).toBe(0);
    expect(counts.ready).toBe(20_000 - source.stats().acked);
  });
});

describe.each(RUNTIMES)('cursor through a pipeline [%s]', (runtime) => {
  test('reads the whole table, records failures, checkpoints at the last key', async () => {
    const file = tmpDb('users');
    const db = open(file);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO users (id, payload) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= 3000; i++) insert.run(i, i % 1000 === 0 ? `fail:${i}` : `ok:${i}`);
    })();
    db.close();
    const source = sqliteCursor({ database: file, table: 'users', checkpointName: `users-${runtime}`, pollInterval: 10 });
    const pipeline = await Pipeline.start({ name: `cursor-${runtime}`, handlers, producer: { module: source }, processors: { default: { runtime, concurrency: 2 } } });
    await waitFor(() => readCheckpoint(file, `users-${runtime}`) === 3000, 'checkpoint at the last row');
    await pipeline.stop();
    expect(source.stats()).toMatchObject({ read: 3000, acked: 2997, failed: 3, checkpoint: 3000 });
    expect(cursorFailures(file, `users-${runtime}`).map((f) => f.key)).toEqual([1000, 2000, 3000]);
  });
});
