// Bounds: option ranges, coded errors when the database cannot be opened, prefetch bounded by
// bytes, and leases of prefetched rows that never run out while the rows wait.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { SqliteQueueProducer, countPending, leasedRows, migrate, openDatabase, queueCounts, sqliteCursor, sqliteQueue, type SqliteQueueOptions } from '@throughway/sqlite-producer';
import { ack, controller, sleep, tmpDb, tmpDbWith } from './helpers.js';

const started: SqliteQueueProducer[] = [];
afterEach(() => {
  for (const p of started.splice(0)) p.terminate();
});

function producer(options: SqliteQueueOptions, index = 0) {
  const c = controller();
  const p = sqliteQueue(options)(index);
  p.init(c);
  started.push(p);
  return { p, c };
}

function thrown(fn: () => unknown): any {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('did not throw');
}

describe('numeric options have ranges', () => {
  const TIMER = '2^31-1 (2147483647)';
  const cases: [string, unknown, string][] = [
    ['leaseMs', 2 ** 31, `an integer from 1 to ${TIMER}`],
    ['leaseMs', 0, `an integer from 1 to ${TIMER}`],
    ['pollInterval', 2 ** 31, `an integer from 1 to ${TIMER}`],
    ['busyTimeout', 2 ** 31, `an integer from 0 to ${TIMER}`],
    ['busyTimeout', -1, `an integer from 0 to ${TIMER}`],
    ['maxAttempts', 1e12, 'an integer from 1 to 1000000'],
    ['maxDeliveries', 0, 'an integer from 1 to 1000000'],
    ['prefetch', 1e7, 'an integer from 0 to 1000000'],
    ['prefetchBytes', 2 ** 33, 'an integer from 0 to 4294967296'],
    ['prefetchBytes', Number.NaN, 'an integer from 0 to 4294967296'],
  ];
  test.each(cases)('sqliteQueue.%s = %s is refused, naming the path and the range', (key, value, range) => {
    const error = thrown(() => sqliteQueue({ database: 'q.db', [key]: value } as SqliteQueueOptions));
    expect(error).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', details: { path: `sqliteQueue.${key}` } });
    expect(error.message).toContain(`Expected \`sqliteQueue.${key}\` to be ${range}`);
  });

  test('backoff bounds, cursor timers, and the largest accepted values', () => {
    expect(thrown(() => sqliteQueue({ database: 'q.db', backoff: { maxMs: 2 ** 31 } })).details.path).toBe('sqliteQueue.backoff.maxMs');
    expect(thrown(() => sqliteQueue({ database: 'q.db', backoff: new Date() as never })).details.path).toBe('sqliteQueue.backoff');
    expect(thrown(() => sqliteCursor({ database: 'q.db', table: 't', pollInterval: 2 ** 31 })).details.path).toBe('sqliteCursor.pollInterval');
    expect(thrown(() => sqliteCursor({ database: 'q.db', table: 't', busyTimeout: 2 ** 40 })).details.path).toBe('sqliteCursor.busyTimeout');
    const o = sqliteQueue({ database: 'q.db', leaseMs: 2 ** 31 - 1, pollInterval: 2 ** 31 - 1, busyTimeout: 2 ** 31 - 1, maxAttempts: 1e6, maxDeliveries: 1e6, prefetch: 1e6, prefetchBytes: 2 ** 32 }).options;
    expect(o).toMatchObject({ leaseMs: 2 ** 31 - 1, busyTimeout: 2 ** 31 - 1, prefetchBytes: 2 ** 32 });
  });

  test('busyTimeout reaches SQLite as given (2^31-1 is not truncated to 0)', () => {
    const conn = openDatabase(tmpDb(), 2 ** 31 - 1);
    expect(conn.pragma('busy_timeout', { simple: true })).toBe(2 ** 31 - 1);
    conn.close();
  });
});

describe('opening the database', () => {
  test('a missing directory, a file that is not a database and a reserved table name fail with coded errors naming the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'throughway-open-'));
    const missing = join(dir, 'no', 'such', 'dir', 'q.db');
    const e1 = thrown(() => sqliteQueue({ database: missing })(0).init(controller()));
    expect(e1).toMatchObject({ code: 'ERR_THROUGHWAY_SQLITE_OPEN', details: { path: missing } });
    expect(e1.message).toContain(missing);

    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'this is not a database, just some text that is long enough to be read as a header. '.repeat(20));
    const e2 = thrown(() => sqliteQueue({ database: junk })(0).init(controller()));
    expect(e2).toMatchObject({ code: 'ERR_THROUGHWAY_SQLITE_OPEN', details: { path: junk, sqliteCode: 'SQLITE_NOTADB' } });
    const e3 = thrown(() => sqliteCursor({ database: junk, table: 'users' })(0).init(controller()));
    expect(e3).toMatchObject({ code: 'ERR_THROUGHWAY_SQLITE_OPEN', details: { path: junk } });

    const e4 = thrown(() => sqliteQueue({ database: join(dir, 'ok.db'), table: 'sqlite_queue' }));
    expect(e4).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', details: { path: 'sqliteQueue.table' } });
    expect(thrown(() => migrate(join(dir, 'ok.db'), { table: 'SQLITE_x' }))).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', details: { path: 'migrate.table' } });
  });

  test('on a store thread the open error keeps its code', async () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'throughway-open-')), 'gone', 'q.db');
    const p = sqliteQueue({ database: missing, thread: true })(0);
    await expect(p.init(controller())).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_SQLITE_OPEN', message: expect.stringContaining(missing) });
  });
});

describe('prefetch is bounded by bytes', () => {
  const MB = 1024 * 1024;
  test('1 MB payloads, prefetch 2000: a claim holds the demand plus prefetchBytes of payloads, no more', async () => {
    const file = tmpDbWith(Array.from({ length: 40 }, (_, i) => Buffer.alloc(MB, i)));
    const { p } = producer({ database: file, prefetch: 2000, prefetchBytes: 5 * MB });
    const first = p.handleDemand(3);
    expect(first).toHaveLength(3);
    // 3 delivered + 5 MB of 1 MB rows prefetched.
    expect(leasedRows(file)).toHaveLength(8);
    expect(queueCounts(file)).toMatchObject({ leased: 8, ready: 32 });
    // The prefetched rows serve the next demand; the next claim refills up to the bound again.
    const next = p.handleDemand(6);
    expect(next.map((m) => (m.acknowledger!.data as { id: number }).id)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(leasedRows(file)).toHaveLength(9 + 5);
    await ack([...first, ...next]);
    expect(countPending(file)).toBe(40 - 9);
  });

  test('the default bound is 16 MiB', () => {
    expect(sqliteQueue({ database: 'q.db' }).options.prefetchBytes).toBe(16 * MB);
  });

  test('prefetchBytes 0 prefetches nothing: every claim takes exactly the demand', () => {
    const file = tmpDbWith(['a', 'b', 'c', 'd']);
    const { p } = producer({ database: file, prefetch: 100, prefetchBytes: 0 });
    expect(p.handleDemand(1)).toHaveLength(1);
    expect(leasedRows(file)).toHaveLength(1);
  });
});

describe('prefetched rows keep their lease while they wait', () => {
  test.each([false, true])('leases of rows waiting in the buffer are renewed: another producer cannot take them [store thread: %s]', async (thread) => {
    const file = tmpDbWith(Array.from({ length: 11 }, (_, i) => `r${i + 1}`));
    const c = controller();
    const p = sqliteQueue({ database: file, leaseMs: 1500, prefetch: 100, thread })(0);
    await p.init(c);
    started.push(p);
    const first = thread ? (p.handleDemand(1), await waitPushed(c, 1)) : p.handleDemand(1);
    expect(first).toHaveLength(1);
    // The delivered row is done at once (a message in flight longer than leaseMs is meant to come back).
    await ack(first);
    // Three leases' time: without renewal the waiting rows' lease would have run out twice.
    await sleep(4500);
    const { p: other } = producer({ database: file, leaseMs: 1500 }, 1);
    expect(other.handleDemand(100)).toEqual([]);
    const rest = p.handleDemand(10);
    expect(rest.map((m) => m.data)).toEqual(['r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9', 'r10', 'r11']);
    expect((rest[0]!.acknowledger!.data as { deliveries: number }).deliveries).toBe(0);
    await ack(rest);
    expect(countPending(file)).toBe(0);
  });
});

async function waitPushed(c: ReturnType<typeof controller>, n: number) {
  const deadline = Date.now() + 15_000;
  while (c.pushed.length < n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} pushed messages`);
    await sleep(10);
  }
  return c.pushed.splice(0, n);
}
