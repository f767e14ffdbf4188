// Exactly-once: the sink's write and the ack of the queue rows commit in one transaction.
import { describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { PostgresQueueProducer, enqueue, migrate, postgresQueue, queueCounts } from '@throughway/postgres-producer';
import { ackInTransaction, LEASE_LOST } from '@throughway/postgres-producer/handler';
import { PG_URL, controller, testPool, uniqueTable, waitFor } from './helpers.js';

const handlers = new URL('./fixtures/exactly-once-handlers.mjs', import.meta.url);

async function queueAndSink(payloads: string[]) {
  const pool = testPool();
  const table = uniqueTable();
  await migrate(pool, { table });
  await pool.query(`CREATE TABLE "${table}_sink" (id bigint PRIMARY KEY, payload text NOT NULL)`);
  await enqueue(pool, payloads, { table });
  return { pool, table };
}

describe.each(['delete', 'mark_done'] as const)('ackInTransaction [%s]', (onSuccess) => {
  test('each row lands in the sink exactly once and leaves the queue in the same transaction; the main thread writes nothing more', async () => {
    const { pool, table } = await queueAndSink(Array.from({ length: 3000 }, (_, i) => `ok:${i + 1}`));
    const source = postgresQueue({ connection: pool, table, onSuccess, pollInterval: 20 });
    const pipeline = await Pipeline.start({
      name: `pg-eo-${onSuccess}`,
      handlers,
      producer: { module: source },
      processors: { default: { runtime: 'threads', concurrency: 1 } },
      batchers: { default: { batchSize: 200, batchTimeout: 20, concurrency: 2 } },
      context: { url: PG_URL, table, onSuccess },
    });
    await waitFor(() => source.stats().acked === 3000, 'all rows acked');
    const { unacked } = await pipeline.stop();
    expect(unacked).toBe(0);
    expect(source.stats()).toMatchObject({ claimed: 3000, acked: 3000, committed: 3000, stale: 0 });
    const { rows } = await pool.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, min(id)::int AS lo, max(id)::int AS hi FROM "${table}_sink"`);
    expect(rows[0]).toEqual({ n: 3000, d: 3000, lo: 1, hi: 3000 });
    expect(await queueCounts(pool, { table })).toEqual({ ready: 0, leased: 0, delayed: 0, done: onSuccess === 'mark_done' ? 3000 : 0, dead: 0 });
  });
});

describe('ackInTransaction by hand', () => {
  test('a row whose lease was lost is neither written nor acked here; its message fails with LEASE_LOST', async () => {
    const { pool, table } = await queueAndSink(['ok:1', 'ok:2']);
    const a = controller();
    const b = controller();
    const pa = new PostgresQueueProducer({ connection: pool, table, leaseMs: 100, listen: false, pollInterval: 20 }, 0);
    const pb = new PostgresQueueProducer({ connection: pool, table, listen: false, pollInterval: 20 }, 1);
    await pa.init(a);
    await pb.init(b);
    pa.handleDemand(2);
    await waitFor(() => a.pushed.length === 2, 'A holds both rows');
    // B claims row 1 once A's lease ran out; A still believes it holds both.
    pb.handleDemand(1);
    await waitFor(() => b.pushed.length === 1, 'B claimed a row');
    const client = await pool.connect();
    try {
      const stolen = b.pushed[0]!.metadata.id;
      const written: unknown[] = [];
      const out = await ackInTransaction(client, a.pushed.map((m) => ({ ...m, data: { id: Number(String(m.data).split(':')[1]), payload: m.data } })), async (repo, owned) => {
        written.push(...owned.map((m) => (m.data as { payload: string }).payload));
        await repo.insertAll(`${table}_sink`, owned.map((m) => m.data as { id: number; payload: string }));
      }, { table });
      const keptId = a.pushed.find((m) => m.metadata.id !== stolen)!.metadata.id;
      expect(out.map((m) => [m.metadata.id, m.status])).toEqual(
        a.pushed.map((m) => [m.metadata.id, m.metadata.id === stolen ? { kind: 'failed', reason: LEASE_LOST } : { kind: 'ok' }]),
      );
      expect(written).toHaveLength(1);
      const { rows } = await pool.query(`SELECT id::float8 AS id, lease::float8 AS lease FROM "${table}"`);
      expect(rows).toEqual([{ id: stolen, lease: b.pushed[0]!.metadata.lease }]);
      expect((await pool.query(`SELECT count(*)::int AS n FROM "${table}_sink"`)).rows[0].n).toBe(1);
      expect(keptId).not.toBe(stolen);
    } finally {
      client.release();
      await pa.terminate();
      await pb.terminate();
    }
  });

  test('a throw in the write rolls back the ack too: the rows stay leased and nothing is in the sink', async () => {
    const { pool, table } = await queueAndSink(['ok:1']);
    const c = controller();
    const p = new PostgresQueueProducer({ connection: pool, table, listen: false }, 0);
    await p.init(c);
    p.handleDemand(1);
    await waitFor(() => c.pushed.length === 1, 'one message');
    await expect(ackInTransaction(pool, c.pushed, async (repo) => {
      await repo.insertAll(`${table}_sink`, [{ id: 1, payload: 'ok:1' }]);
      throw new Error('after the write');
    }, { table })).rejects.toThrow('after the write');
    expect(await queueCounts(pool, { table })).toMatchObject({ leased: 1 });
    expect((await pool.query(`SELECT count(*)::int AS n FROM "${table}_sink"`)).rows[0].n).toBe(0);
    await p.terminate();
  });

  test('messages without a queue lease in their metadata are refused before anything is written', async () => {
    const pool = testPool();
    await expect(ackInTransaction(pool, [{ data: 'x', metadata: {} } as never], () => undefined)).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_ARGUMENT' });
  });
});
