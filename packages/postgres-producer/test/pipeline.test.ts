// The queue inside real pipelines (both runtimes), NOTIFY wake-ups, and reconnects after the
// producer's own backends are terminated.
import pg from 'pg';
import { describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { deadLetters, enqueue, migrate, postgresQueue, queueCounts } from '@throughway/postgres-producer';
import { PG_URL, controller, sleep, testPool, uniqueTable, waitFor } from './helpers.js';

const handlers = new URL('./fixtures/outcome-handlers.mjs', import.meta.url);
const RUNTIMES = ['inline', 'threads'] as const;

describe.each(RUNTIMES)('queue through a pipeline [%s]', (runtime) => {
  test('every row is processed and acked by two producers, each exactly once; the queue ends empty; failures retried then dead-lettered', async () => {
    const pool = testPool();
    const table = uniqueTable();
    await migrate(pool, { table });
    await enqueue(pool, [...Array.from({ length: 5000 }, (_, i) => `ok:${i}`), 'fail:x', 'permanent:y'], { table });
    const source = postgresQueue({ connection: pool, table, pollInterval: 20, maxAttempts: 2, backoff: { baseMs: 10, maxMs: 10 } });
    const pipeline = await Pipeline.start({ name: `pg-${runtime}-all`, handlers, producer: { module: source, concurrency: 2 }, processors: { default: { runtime, concurrency: 2 } } });
    await waitFor(async () => (await queueCounts(pool, { table })).dead === 2 && source.stats().acked === 5000, 'all rows acked or dead');
    const { unacked } = await pipeline.stop();
    expect(unacked).toBe(0);
    expect(await queueCounts(pool, { table })).toEqual({ ready: 0, leased: 0, delayed: 0, done: 0, dead: 2 });
    expect(source.stats()).toMatchObject({ claimed: 5003, acked: 5000, retried: 1, deadLettered: 2, stale: 0 });
    expect((await deadLetters(pool, { table })).map((d) => [d.payload, d.attempts, d.last_error])).toEqual([
      ['fail:x', 2, 'refused fail:x'],
      ['permanent:y', 1, 'permanent failure'],
    ]);
  });
});

describe('statistics of an empty queue', () => {
  test('vacuumed while empty (0 rows on its pages), then given a backlog: acks and failures find their rows by id, none times out', async () => {
    // A statement timeout far above an ack's normal time: the acks that joined the table with
    // their input took 20-45 s each in this state (the planner took the table for empty and
    // scanned all of it once per acked row).
    const pool = new pg.Pool({ connectionString: PG_URL, max: 4, statement_timeout: 10_000 });
    pool.on('error', () => undefined);
    const table = uniqueTable();
    try {
      await migrate(pool, { table });
      await pool.query(`ALTER TABLE "${table}" SET (vacuum_truncate = false)`);
      await enqueue(pool, Array.from({ length: 20_000 }, (_, i) => `ok:old${i}`), { table });
      await pool.query(`DELETE FROM "${table}"`);
      await pool.query(`VACUUM ANALYZE "${table}"`);
      const { rows: stats } = await pool.query(`SELECT relpages, reltuples FROM pg_class WHERE relname = $1`, [table]);
      expect(stats[0].reltuples).toBe(0);
      expect(stats[0].relpages).toBeGreaterThan(0);
      const N = 40_000;
      await enqueue(pool, [...Array.from({ length: N }, (_, i) => `ok:${i}`), 'fail:x', 'permanent:y'], { table });
      const source = postgresQueue({ connection: pool, table, pollInterval: 10, prefetch: 2000, maxAttempts: 2, backoff: { baseMs: 10, maxMs: 10 }, vacuumEvery: 0 });
      const pipeline = await Pipeline.start({ name: 'pg-empty-stats', handlers, producer: { module: source }, processors: { default: { runtime: 'inline', maxDemand: 1000 } } });
      await waitFor(async () => source.stats().acked === N && (await queueCounts(pool, { table })).dead === 2, 'all rows acked or dead', 120_000);
      await pipeline.stop();
      expect(source.stats()).toMatchObject({ claimed: N + 3, acked: N, retried: 1, deadLettered: 2, stale: 0, errors: 0 });
      expect(await queueCounts(pool, { table })).toEqual({ ready: 0, leased: 0, delayed: 0, done: 0, dead: 2 });
    } finally {
      await pool.end();
    }
  }, 150_000);
});

describe('claim plan', () => {
  test('claims read the claim index in order and stop at their limit, also on a table vacuumed while empty (relpages and reltuples 0)', async () => {
    const pool = testPool();
    const table = uniqueTable();
    await migrate(pool, { table });
    await enqueue(pool, Array.from({ length: 20_000 }, (_, i) => `old${i}`), { table });
    await pool.query(`DELETE FROM "${table}"`);
    // VACUUM truncates the emptied table once no snapshot in the database still needs its rows
    // (other tests' transactions may, for a moment): until relpages and reltuples are both 0.
    await waitFor(async () => {
      await pool.query(`VACUUM "${table}"`);
      const { rows } = await pool.query(`SELECT relpages, reltuples FROM pg_class WHERE relname = $1`, [table]);
      return rows[0].relpages === 0 && rows[0].reltuples === 0;
    }, 'VACUUM to truncate the emptied table', 30_000);
    await enqueue(pool, Array.from({ length: 20_000 }, (_, i) => `ok:${i}`), { table });
    const read = async () => (await pool.query(`SELECT idx_tup_read::int AS n FROM pg_stat_user_indexes WHERE indexrelname = $1`, [`${table}_claim`])).rows[0].n as number;
    const before = await read();
    const source = postgresQueue({ connection: pool, table, migrate: false, listen: false, pollInterval: 10_000 });
    const producer = source(0);
    const c = controller();
    await producer.init(c);
    try {
      for (let k = 1; k <= 10; k++) {
        producer.handleDemand(1000);
        await waitFor(() => c.pushed.length === k * 1000, `claim ${k}`);
      }
      // Statistics reach the view once the backend flushes them (within a second or so of idling).
      await waitFor(async () => (await read()) - before >= 10_000, 'the claims in pg_stat_user_indexes', 30_000);
      // In order with a limit: ~1,000 entries a claim, plus the entries of rows earlier claims
      // moved on, until they are marked dead (not while another test's snapshot may still see
      // them): 10,000 to 55,000 in all. A scan of every ready row, then a sort, read each claim's
      // whole backlog: 200,000 measured (20,000 + 19,000 + ... at the least).
      expect((await read()) - before).toBeLessThan(100_000);
    } finally {
      await producer.terminate();
    }
  });
});

describe('wake-ups', () => {
  test('NOTIFY wakes a waiting producer long before its poll; prepareForDraining stops listening and polling', async () => {
    const pool = testPool();
    const table = uniqueTable();
    const applicationName = `tw_listen_${table}`;
    await migrate(pool, { table });
    const source = postgresQueue({ connection: PG_URL, table, pollInterval: 3_600_000, applicationName });
    const pipeline = await Pipeline.start({ name: 'pg-notify', handlers, producer: { module: source }, processors: { default: { runtime: 'inline', concurrency: 1 } } });
    // The first claim found nothing; only a notification can wake the producer within the hour.
    await sleep(100);
    await enqueue(pool, ['ok:1', 'ok:2'], { table });
    await waitFor(() => source.stats().acked === 2, 'two rows acked after NOTIFY');
    const listening = async () =>
      (await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'`, [applicationName])).rows[0].n;
    expect(await listening()).toBe(1);
    await pipeline.stop();
    expect(await listening()).toBe(0);
    await enqueue(pool, ['ok:3'], { table });
    await sleep(100);
    expect(source.stats().claimed).toBe(2);
  });
});

describe('lost connections', () => {
  test('after pg_terminate_backend of every producer connection (by application_name), it reconnects with backoff and nothing is lost', async () => {
    const pool = testPool();
    const table = uniqueTable();
    const applicationName = `tw_term_${table}`;
    await migrate(pool, { table });
    await enqueue(pool, Array.from({ length: 2000 }, (_, i) => `ok:${i}`), { table });
    const errors: unknown[] = [];
    const source = postgresQueue({ connection: PG_URL, table, pollInterval: 50, applicationName, maxReconnectDelay: 200, onError: (e) => errors.push(e) });
    const pipeline = await Pipeline.start({ name: 'pg-terminate', handlers, producer: { module: source }, processors: { default: { runtime: 'inline', concurrency: 1 } } });
    await waitFor(() => source.stats().acked > 0, 'first acks');
    const terminate = async () =>
      (await pool.query(`SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t`, [applicationName])).rows[0].n;
    expect(await terminate()).toBeGreaterThan(0);
    await enqueue(pool, Array.from({ length: 1000 }, (_, i) => `ok:late${i}`), { table });
    await sleep(100);
    expect(await terminate()).toBeGreaterThanOrEqual(0);
    await waitFor(async () => (await queueCounts(pool, { table })).ready === 0 && (await queueCounts(pool, { table })).leased === 0, 'every row acked', 60_000);
    // The LISTEN connection came back too.
    await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'`, [applicationName])).rows[0].n === 1, 'listening again');
    const { unacked } = await pipeline.stop();
    expect(unacked).toBe(0);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.map((e) => String((e as Error).message)).filter((m) => !/terminat|connection|EPIPE|ECONNRESET/i.test(m))).toEqual([]);
    expect(source.stats().acked).toBe(3000);
    expect(source.stats().reconnects).toBeGreaterThan(0);
  });
});
