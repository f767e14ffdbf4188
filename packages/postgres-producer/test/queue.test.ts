// Queue mode against the machine's real Postgres: claims, leases, acks, retries, dead letters.
import { describe, expect, test } from 'vitest';
import pg from 'pg';
import { PostgresQueueProducer, deadLetters, enqueue, migrate, postgresQueue, queueCounts, queueDrained, QUEUE_STORAGE } from '@throughway/postgres-producer';
import { PG_URL, ack, controller, fail, sleep, testPool, uniqueTable, waitFor } from './helpers.js';

async function queueWith(payloads: string[], table = uniqueTable()): Promise<{ pool: pg.Pool; table: string }> {
  const pool = testPool();
  await migrate(pool, { table });
  await enqueue(pool, payloads, { table });
  return { pool, table };
}

async function started(options: ConstructorParameters<typeof PostgresQueueProducer>[0], index = 0) {
  const c = controller();
  const producer = new PostgresQueueProducer({ listen: false, pollInterval: 20, ...options }, index);
  await producer.init(c);
  return { producer, c };
}

describe('options', () => {
  test('invalid options fail before anything opens, naming the path and the allowed range', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ connection: PG_URL, leaseMs: 5 }, 'Expected `postgresQueue.leaseMs` to be an integer from 100 to 86400000, got `5` (number)'],
      [{ connection: PG_URL, maxAttempts: 0 }, 'Expected `postgresQueue.maxAttempts` to be an integer from 1 to 1000, got `0` (number)'],
      [{ connection: PG_URL, maxDeliveries: 1.5 }, 'Expected `postgresQueue.maxDeliveries` to be an integer from 1 to 1000'],
      [{ connection: PG_URL, prefetch: -1 }, 'Expected `postgresQueue.prefetch` to be an integer from 0 to 100000'],
      [{ connection: PG_URL, table: 'x; drop table y' }, 'Expected `postgresQueue.table` to be an identifier'],
      [{ connection: PG_URL, table: 'a'.repeat(41) }, 'of at most 40 characters'],
      [{ connection: PG_URL, onSuccess: 'mark' }, "Expected `postgresQueue.onSuccess` to be 'delete' or 'mark_done'"],
      [{ connection: PG_URL, backoff: { baseMs: 10, maxMs: 5 } }, 'Expected `postgresQueue.backoff.maxMs` to be an integer from baseMs (10)'],
      [{ connection: 42 }, 'Expected `postgresQueue.connection` to be a pg.Pool or a connection string'],
      [{ connection: PG_URL, lease: 1 }, 'Unknown option `postgresQueue.lease`'],
      [{ connection: PG_URL, synchronousCommit: 'off' }, 'Expected `postgresQueue.synchronousCommit` to be a boolean'],
    ];
    for (const [options, message] of cases) {
      let caught: { code?: string; message?: string } | undefined;
      try {
        postgresQueue(options as never);
      } catch (error) {
        caught = error as { code: string; message: string };
      }
      expect(caught?.code, JSON.stringify(options)).toBe('ERR_THROUGHWAY_INVALID_OPTION');
      expect(caught?.message).toContain(message);
    }
  });
});

describe('migrate', () => {
  test('creates the queue, its dead-letter table, the claim index and the autovacuum settings; idempotent under concurrency', async () => {
    const pool = testPool();
    const table = uniqueTable();
    await Promise.all([migrate(pool, { table }), migrate(pool, { table }), migrate(pool, { table })]);
    const { rows } = await pool.query(`SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1) ORDER BY relname`, [[table, `${table}_dead`, `${table}_claim`]]);
    expect(rows.map((r) => r.relname)).toEqual([table, `${table}_claim`, `${table}_dead`].sort());
    expect(rows.find((r) => r.relname === table).reloptions).toEqual(QUEUE_STORAGE.map((s) => s.replace(/ /g, '')));
  });

  test('refuses a table of the same name that is not a queue table', async () => {
    const pool = testPool();
    const table = uniqueTable();
    await pool.query(`CREATE TABLE "${table}" (id int)`);
    await expect(migrate(pool, { table })).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_POSTGRES_SCHEMA' });
  });
});

describe('claims and acks', () => {
  test('a claim takes up to the demand, in id order, with a lease; acks delete the rows', async () => {
    const { pool, table } = await queueWith(['a', 'b', 'c', 'd', 'e']);
    const { producer, c } = await started({ connection: pool, table, migrate: false });
    expect(producer.handleDemand(3)).toEqual([]);
    await waitFor(() => c.pushed.length === 3, 'three messages');
    expect(c.pushed.map((m) => m.data)).toEqual(['a', 'b', 'c']);
    expect(c.pushed[0]!.metadata).toMatchObject({ attempts: 0, deliveries: 1 });
    expect(await queueCounts(pool, { table })).toEqual({ ready: 2, leased: 3, delayed: 0, done: 0, dead: 0 });
    await ack(c.pushed);
    expect(await queueCounts(pool, { table })).toEqual({ ready: 2, leased: 0, delayed: 0, done: 0, dead: 0 });
    const { rows } = await pool.query(`SELECT payload FROM "${table}" ORDER BY id`);
    expect(rows.map((r) => r.payload)).toEqual(['d', 'e']);
    await producer.terminate();
    expect(producer.stats()).toMatchObject({ claimed: 3, acked: 3, stale: 0 });
  });

  test('acks of many messages are written as one statement per group, not one per row', async () => {
    const { pool, table } = await queueWith(Array.from({ length: 500 }, (_, i) => `m${i}`));
    const statements: string[] = [];
    const query = pool.query.bind(pool);
    (pool as unknown as { query: unknown }).query = (config: unknown, values?: unknown) => {
      statements.push(typeof config === 'string' ? config : (config as { text: string }).text);
      return (query as (c: unknown, v?: unknown) => unknown)(config, values);
    };
    const { producer, c } = await started({ connection: pool, table, migrate: false });
    producer.handleDemand(500);
    await waitFor(() => c.pushed.length === 500, '500 messages');
    statements.length = 0;
    await Promise.all([ack(c.pushed.slice(0, 250)), ack(c.pushed.slice(250, 400), c.pushed.slice(400).map((m) => fail(m, 'no')))]);
    expect(statements).toHaveLength(1);
    expect(producer.stats()).toMatchObject({ acked: 400, retried: 100 });
    await producer.terminate();
  });

  test('failures come back after the backoff with attempts and last_error; past maxAttempts they are dead-lettered', async () => {
    const { pool, table } = await queueWith(['x']);
    const { producer, c } = await started({ connection: pool, table, migrate: false, maxAttempts: 2, backoff: { baseMs: 50, maxMs: 50 } });
    producer.handleDemand(1);
    await waitFor(() => c.pushed.length === 1, 'first delivery');
    await ack([], [fail(c.pushed[0]!, { name: 'Error', message: 'boom 1' })]);
    const { rows } = await pool.query(`SELECT attempts, deliveries, last_error, lease FROM "${table}"`);
    expect(rows).toEqual([{ attempts: 1, deliveries: 1, last_error: 'boom 1', lease: null }]);
    producer.handleDemand(1);
    await waitFor(() => c.pushed.length === 2, 'second delivery after the backoff');
    expect(c.pushed[1]!.metadata).toMatchObject({ attempts: 1, deliveries: 2 });
    await ack([], [fail(c.pushed[1]!, 'boom 2')]);
    const dead = await deadLetters(pool, { table });
    expect(dead.map((d) => [d.payload, d.attempts, d.deliveries, d.last_error])).toEqual([['x', 2, 2, 'boom 2']]);
    expect(await queueCounts(pool, { table })).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 1 });
    expect(producer.stats()).toMatchObject({ retried: 1, deadLettered: 1 });
    await producer.terminate();
  });

  test('configureAck { retry: false } dead-letters at once', async () => {
    const { pool, table } = await queueWith(['bad']);
    const { producer, c } = await started({ connection: pool, table, migrate: false });
    producer.handleDemand(1);
    await waitFor(() => c.pushed.length === 1, 'delivery');
    const m = c.pushed[0]!;
    m.acknowledger!.data = m.acknowledger!.module.configure!(m.acknowledger!.ref, m.acknowledger!.data, { retry: false });
    await ack([], [fail(m, 'invalid payload')]);
    expect((await deadLetters(pool, { table })).map((d) => [d.payload, d.attempts, d.last_error])).toEqual([['bad', 1, 'invalid payload']]);
    expect(() => m.acknowledger!.module.configure!(m.acknowledger!.ref, m.acknowledger!.data, { retyr: false })).toThrow(/Unknown configureAck option `retyr`/);
    await producer.terminate();
  });

  test('a late ack from an expired lease never touches the row another producer now holds', async () => {
    const { pool, table } = await queueWith(['only']);
    const a = await started({ connection: pool, table, migrate: false, leaseMs: 100 }, 0);
    const b = await started({ connection: pool, table, migrate: false, leaseMs: 60_000 }, 1);
    a.producer.handleDemand(1);
    await waitFor(() => a.c.pushed.length === 1, 'A has the row');
    b.producer.handleDemand(1);
    await waitFor(() => b.c.pushed.length === 1, 'B claims it after A\'s lease ran out');
    await ack(a.c.pushed);
    await ack([], [fail(a.c.pushed[0]!, 'late failure')]);
    const { rows } = await pool.query(`SELECT payload, lease::float8 AS lease, attempts, deliveries FROM "${table}"`);
    expect(rows).toEqual([{ payload: 'only', lease: b.c.pushed[0]!.metadata.lease, attempts: 0, deliveries: 2 }]);
    expect(a.producer.stats()).toMatchObject({ acked: 0, stale: 2 });
    await ack(b.c.pushed);
    expect(await queueCounts(pool, { table })).toMatchObject({ ready: 0, leased: 0 });
    await Promise.all([a.producer.terminate(), b.producer.terminate()]);
  });

  test('deliveries that end with no ack are counted apart from failures: a crash loop never dead-letters a good row, maxDeliveries ends a poison row', async () => {
    const { pool, table } = await queueWith(['good', 'poison']);
    // Three "crashes": a producer claims with a short lease and never acks.
    for (let i = 0; i < 3; i++) {
      const crashed = await started({ connection: pool, table, migrate: false, leaseMs: 100, maxAttempts: 1, maxDeliveries: 3 }, i);
      crashed.producer.handleDemand(2);
      await waitFor(() => crashed.c.pushed.length === 2, `delivery ${i + 1}`);
      await sleep(150);
      await crashed.producer.terminate();
    }
    const { rows } = await pool.query(`SELECT payload, attempts, deliveries FROM "${table}" ORDER BY id`);
    expect(rows).toEqual([
      { payload: 'good', attempts: 0, deliveries: 3 },
      { payload: 'poison', attempts: 0, deliveries: 3 },
    ]);
    // The fourth claim finds both over maxDeliveries (3 deliveries, no ack): dead-lettered, not delivered.
    const last = await started({ connection: pool, table, migrate: false, maxAttempts: 1, maxDeliveries: 3 }, 9);
    last.producer.handleDemand(2);
    await waitFor(async () => (await queueCounts(pool, { table })).dead === 2, 'both dead-lettered');
    expect(last.c.pushed).toEqual([]);
    expect((await deadLetters(pool, { table })).map((d) => [d.payload, d.attempts, d.deliveries, d.last_error])).toEqual([
      ['good', 0, 4, 'delivered 3 times without an ack (the process died or the lease ran out each time)'],
      ['poison', 0, 4, 'delivered 3 times without an ack (the process died or the lease ran out each time)'],
    ]);
    await last.producer.terminate();
  });

  test('with maxDeliveries above the crashes, a row that crashed twice is still delivered and acked with maxAttempts 1', async () => {
    const { pool, table } = await queueWith(['survivor']);
    for (let i = 0; i < 2; i++) {
      const crashed = await started({ connection: pool, table, migrate: false, leaseMs: 100, maxAttempts: 1 }, i);
      crashed.producer.handleDemand(1);
      await waitFor(() => crashed.c.pushed.length === 1, `delivery ${i + 1}`);
      await sleep(150);
      await crashed.producer.terminate();
    }
    const ok = await started({ connection: pool, table, migrate: false, maxAttempts: 1 }, 5);
    ok.producer.handleDemand(1);
    await waitFor(() => ok.c.pushed.length === 1, 'third delivery');
    await ack(ok.c.pushed);
    expect(await queueCounts(pool, { table })).toEqual({ ready: 0, leased: 0, delayed: 0, done: 0, dead: 0 });
    await ok.producer.terminate();
  });

  test("onSuccess 'mark_done' keeps acked rows, marked, and never claims them again", async () => {
    const { pool, table } = await queueWith(['a', 'b']);
    const { producer, c } = await started({ connection: pool, table, migrate: false, onSuccess: 'mark_done' });
    producer.handleDemand(2);
    await waitFor(() => c.pushed.length === 2, 'two messages');
    await ack(c.pushed);
    producer.handleDemand(5);
    await sleep(100);
    expect(c.pushed).toHaveLength(2);
    expect(await queueCounts(pool, { table })).toEqual({ ready: 0, leased: 0, delayed: 0, done: 2, dead: 0 });
    const { rows } = await pool.query(`SELECT leased_by FROM "${table}" WHERE done_at IS NOT NULL`);
    expect(rows.map((r) => r.leased_by)).toEqual([producer.leasedBy, producer.leasedBy]);
    await producer.terminate();
  });

  test('queueDrained: false while any row is ready, leased or delayed; true once every row is acked, marked done or dead-lettered', async () => {
    const { pool, table } = await queueWith([]);
    expect(await queueDrained(pool, { table })).toBe(true);
    await enqueue(pool, ['ok', 'retry', 'dead', 'kept'], { table });
    expect(await queueDrained(pool, { table })).toBe(false);
    const { producer, c } = await started({ connection: pool, table, migrate: false, onSuccess: 'mark_done', maxAttempts: 2, backoff: { baseMs: 300, maxMs: 300 } });
    producer.handleDemand(4);
    await waitFor(() => c.pushed.length === 4, 'four messages');
    const [ok, retry, dead, kept] = c.pushed as [(typeof c.pushed)[0], (typeof c.pushed)[0], (typeof c.pushed)[0], (typeof c.pushed)[0]];
    dead.acknowledger!.data = dead.acknowledger!.module.configure!(dead.acknowledger!.ref, dead.acknowledger!.data, { retry: false });
    await ack([ok], [fail(retry, 'later'), fail(dead, 'never')]);
    expect(await queueCounts(pool, { table })).toEqual({ ready: 0, leased: 1, delayed: 1, done: 1, dead: 1 });
    expect(await queueDrained(pool, { table })).toBe(false);
    await ack([kept]);
    expect(await queueCounts(pool, { table })).toMatchObject({ leased: 0, delayed: 1 });
    expect(await queueDrained(pool, { table })).toBe(false);
    producer.handleDemand(1);
    await waitFor(() => c.pushed.length === 5, 'the retried row, after its backoff');
    expect(c.pushed[4]!.data).toBe('retry');
    await ack([c.pushed[4]!]);
    expect(await queueCounts(pool, { table })).toEqual({ ready: 0, leased: 0, delayed: 0, done: 3, dead: 1 });
    expect(await queueDrained(pool, { table })).toBe(true);
    const client = await pool.connect();
    try {
      expect(await queueDrained(client, { table })).toBe(true);
    } finally {
      client.release();
    }
    await expect(queueDrained(pool, { table: 'x; drop table y' })).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`queueDrained.table`') });
    await producer.terminate();
  });

  test('prefetch claims beyond the demand; terminate gives prefetched rows back without counting a delivery', async () => {
    const { pool, table } = await queueWith(Array.from({ length: 20 }, (_, i) => `p${i}`));
    const { producer, c } = await started({ connection: pool, table, migrate: false, prefetch: 5 });
    producer.handleDemand(2);
    await waitFor(() => c.pushed.length === 2, 'two messages');
    expect(await queueCounts(pool, { table })).toMatchObject({ ready: 13, leased: 7 });
    // Served from the prefetched rows, synchronously.
    const served = producer.handleDemand(3);
    expect(served.map((m) => m.data)).toEqual(['p2', 'p3', 'p4']);
    await ack([...c.pushed, ...served]);
    await producer.terminate();
    expect(await queueCounts(pool, { table })).toMatchObject({ ready: 15, leased: 0 });
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${table}" WHERE deliveries = 0`);
    expect(rows[0].n).toBe(15);
  });

  test('metadata: stored metadata is spread in; metadata: false leaves it out', async () => {
    const pool = testPool();
    const table = uniqueTable();
    await migrate(pool, { table });
    await enqueue(pool, [{ payload: 'p', metadata: { source: 'api', id: 'ignored' } }], { table });
    const { producer, c } = await started({ connection: pool, table, migrate: false });
    producer.handleDemand(1);
    await waitFor(() => c.pushed.length === 1, 'one message');
    expect(c.pushed[0]!.metadata).toMatchObject({ source: 'api', attempts: 0, deliveries: 1 });
    expect(typeof c.pushed[0]!.metadata.id).toBe('number');
    await ack([], [fail(c.pushed[0]!, 'again')]);
    await producer.terminate();
    const bare = await started({ connection: pool, table, migrate: false, metadata: false, backoff: () => 0 });
    bare.producer.handleDemand(1);
    await waitFor(() => bare.c.pushed.length === 1, 'one message');
    expect(bare.c.pushed[0]!.metadata).toEqual({});
    await bare.producer.terminate();
  });

  test('a connection string gives the producer a pool of its own, ended by terminate; a caller\'s pool is left open', async () => {
    const { pool, table } = await queueWith(['s']);
    const own = await started({ connection: PG_URL, table, applicationName: `tw_own_${table}` });
    own.producer.handleDemand(1);
    await waitFor(() => own.c.pushed.length === 1, 'one message');
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [`tw_own_${table}`]);
    expect(rows[0].n).toBeGreaterThan(0);
    await ack(own.c.pushed);
    await own.producer.terminate();
    await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [`tw_own_${table}`])).rows[0].n === 0, 'its connections closed');
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  test.each([false, true])('synchronousCommit %s: claims and acks work; a caller\'s pool keeps its own synchronous_commit (the producer sets it for its own transactions only)', async (synchronousCommit) => {
    const { pool, table } = await queueWith(Array.from({ length: 50 }, (_, i) => `s${i}`));
    const { producer, c } = await started({ connection: pool, table, migrate: false, synchronousCommit });
    producer.handleDemand(50);
    await waitFor(() => c.pushed.length === 50, '50 messages');
    await ack(c.pushed.slice(0, 40));
    await ack([], c.pushed.slice(40));
    await producer.terminate();
    expect(producer.stats()).toMatchObject({ claimed: 50, acked: 40, retried: 10, stale: 0, errors: 0 });
    // Every connection the pool holds, each asked in turn while the others are checked out.
    const clients = await Promise.all(Array.from({ length: pool.totalCount }, () => pool.connect()));
    try {
      for (const client of clients) expect((await client.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe('on');
    } finally {
      for (const client of clients) client.release();
    }
  });

  test('vacuumEvery: the producer vacuums its queue table after that many rows, without waiting for autovacuum', async () => {
    const { pool, table } = await queueWith(Array.from({ length: 300 }, (_, i) => `v${i}`));
    const { producer, c } = await started({ connection: pool, table, migrate: false, vacuumEvery: 100 });
    producer.handleDemand(300);
    await waitFor(() => c.pushed.length === 300, '300 messages');
    for (let i = 0; i < 300; i += 100) await ack(c.pushed.slice(i, i + 100));
    await producer.terminate();
    expect(producer.stats().vacuums).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (await pool.query(`SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relname = $1`, [table])).rows[0].n >= 1, 'a vacuum recorded by the server');
  });
});
