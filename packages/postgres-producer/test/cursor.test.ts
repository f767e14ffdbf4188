// Cursor mode: an existing table read in key order, checkpointed below the lowest unacked key.
import { describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { CheckpointTracker, PostgresCursorProducer, cursorAcknowledger, postgresCursor } from '@throughway/postgres-producer';
import { controller, fail, testPool, uniqueTable, waitFor } from './helpers.js';

const handlers = new URL('./fixtures/outcome-handlers.mjs', import.meta.url);

async function usersTable(count: number, payload: (i: number) => string = (i) => `ok:${i}`) {
  const pool = testPool();
  const table = uniqueTable('twusers');
  await pool.query(`CREATE TABLE "${table}" (id int PRIMARY KEY, payload text NOT NULL)`);
  await pool.query(`INSERT INTO "${table}" SELECT i, p FROM unnest($1::int[], $2::text[]) AS u(i, p)`, [
    Array.from({ length: count }, (_, i) => i + 1),
    Array.from({ length: count }, (_, i) => payload(i + 1)),
  ]);
  return { pool, table };
}

async function checkpoint(pool: ReturnType<typeof testPool>, name: string): Promise<unknown> {
  const { rows } = await pool.query(`SELECT position FROM throughway_checkpoints WHERE name = $1`, [name]);
  return rows[0]?.position;
}

test('CheckpointTracker commits only the acked prefix', () => {
  const t = new CheckpointTracker();
  for (const k of [1, 2, 3, 4]) t.emitted(k);
  t.acked(2);
  t.acked(4);
  expect(t.advance()).toBe(false);
  t.acked(1);
  expect(t.advance()).toBe(true);
  expect(t.committed).toBe(2);
  t.acked(3);
  t.advance();
  expect([t.committed, t.outstanding]).toEqual([4, 0]);
});

describe.each(['inline', 'threads'] as const)('cursor through a pipeline [%s]', (runtime) => {
  test('reads the whole table in key order without changing it, records failures, checkpoints at the last key', async () => {
    const { pool, table } = await usersTable(3000, (i) => (i % 1000 === 0 ? `fail:${i}` : `ok:${i}`));
    const source = postgresCursor({ connection: pool, table, checkpointName: `${table}-${runtime}`, pollInterval: 20 });
    const pipeline = await Pipeline.start({ name: `pg-cursor-${runtime}`, handlers, producer: { module: source }, processors: { default: { runtime, concurrency: 2 } } });
    await waitFor(async () => (await checkpoint(pool, `${table}-${runtime}`)) === 3000, 'checkpoint at the last row');
    await pipeline.stop();
    expect(source.stats()).toMatchObject({ read: 3000, acked: 2997, failed: 3, checkpoint: 3000 });
    const { rows } = await pool.query(`SELECT key, row->>'payload' AS payload, last_error FROM throughway_cursor_failures WHERE checkpoint_name = $1 ORDER BY key`, [`${table}-${runtime}`]);
    expect(rows).toEqual([
      { key: '1000', payload: 'fail:1000', last_error: 'refused fail:1000' },
      { key: '2000', payload: 'fail:2000', last_error: 'refused fail:2000' },
      { key: '3000', payload: 'fail:3000', last_error: 'refused fail:3000' },
    ]);
    expect((await pool.query(`SELECT count(*)::int AS n FROM "${table}"`)).rows[0].n).toBe(3000);
    expect(() => source(1)).toThrow(/concurrency` 1 only/);
  });
});

describe('checkpoint and restart', () => {
  test('the checkpoint stays below the lowest unacked key; a new cursor resumes after it and re-reads only what was in flight', async () => {
    const { pool, table } = await usersTable(10);
    const name = `${table}-restart`;
    const c = controller();
    const first = new PostgresCursorProducer({ connection: pool, table, checkpointName: name, pollInterval: 20 });
    await first.init(c);
    first.handleDemand(6);
    await waitFor(() => c.pushed.length === 6, 'six rows');
    expect(c.pushed.map((m) => (m.data as { id: number }).id)).toEqual([1, 2, 3, 4, 5, 6]);
    const [m1, m2, m3, m4, m5, m6] = c.pushed;
    // 4 is never acked: the checkpoint may reach 3, not 5 or 6.
    await cursorAcknowledger.ack(m1!.acknowledger!.ref, [m2!, m1!, m5!], [fail(m3!, 'bad row')]);
    await cursorAcknowledger.ack(m1!.acknowledger!.ref, [m6!], []);
    await first.terminate();
    expect(await checkpoint(pool, name)).toBe(3);
    const again = controller();
    const second = new PostgresCursorProducer({ connection: pool, table, checkpointName: name, pollInterval: 20 });
    await second.init(again);
    second.handleDemand(100);
    await waitFor(() => again.pushed.length === 7, 'the rest');
    expect(again.pushed.map((m) => (m.data as { id: number }).id)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    await cursorAcknowledger.ack(again.pushed[0]!.acknowledger!.ref, again.pushed, []);
    await pool.query(`INSERT INTO "${table}" VALUES (11, 'ok:11')`);
    await waitFor(() => again.pushed.length === 8, 'a new row found by polling');
    await cursorAcknowledger.ack(again.pushed[0]!.acknowledger!.ref, [again.pushed[7]!], []);
    await second.terminate();
    expect(await checkpoint(pool, name)).toBe(11);
  });

  test('a missing table or key column is refused at init with a code', async () => {
    const { pool, table } = await usersTable(1);
    await expect(new PostgresCursorProducer({ connection: pool, table: `${table}_nope` }).init(controller())).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_TABLE' });
    await expect(new PostgresCursorProducer({ connection: pool, table, key: 'nope' }).init(controller())).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_COLUMN' });
    expect(() => postgresCursor({ connection: pool, table, pollInterval: 0 })).toThrow('Expected `postgresCursor.pollInterval` to be an integer from 1 to 3600000');
  });
});
