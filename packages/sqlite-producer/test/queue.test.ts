// Queue mode driven by hand: init / handleDemand / ack called directly on real SQLite files.
import { describe, expect, test, afterEach } from 'vitest';
import type { ThroughwayMessage } from '@throughway/core';
import {
  SqliteQueueProducer,
  countPending,
  queueDrained,
  deadLetters,
  enqueue,
  migrate,
  queueAcknowledger,
  queueCounts,
  leasedRows,
  sqliteQueue,
  type SqliteQueueOptions,
} from '@throughway/sqlite-producer';
import { ack, controller, fail, open, sleep, tmpDb, tmpDbWith, waitFor } from './helpers.js';

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

const ids = (ms: ThroughwayMessage[]) => ms.map((m) => (m.acknowledger!.data as { id: number }).id);

describe('migrate and enqueue', () => {
  test('migrate is idempotent and creates the queue, dead-letter and checkpoint tables', () => {
    const file = tmpDb();
    migrate(file);
    migrate(file);
    migrate(file, { table: 'orders', markDone: true });
    const db = open(file);
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all();
    expect(tables).toEqual(expect.arrayContaining(['throughway_events', 'throughway_events_dead', 'throughway_checkpoints', 'orders', 'orders_dead']));
    expect(db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'orders_pending'`).pluck().get()).toBe('orders_pending');
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  test('table names are checked identifiers; a foreign table of the same name is refused', () => {
    const file = tmpDb();
    expect(() => migrate(file, { table: 'x"; DROP TABLE y; --' })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION' }));
    expect(() => migrate(file, { tabel: 'x' } as never)).toThrow(/Unknown option `migrate.tabel`/);
    const db = open(file);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
    db.close();
    expect(() => migrate(file, { table: 'users' })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_SQLITE_SCHEMA', message: expect.stringContaining('payload') }));
  });

  test('enqueue stores strings as TEXT and bytes as BLOB, with metadata and availableAt, in consecutive ids', () => {
    const file = tmpDb();
    migrate(file);
    const later = Date.now() + 60_000;
    const r = enqueue(file, ['{"a":1}', Buffer.from([1, 2, 3]), { payload: 'x', metadata: { source: 'api' }, availableAt: later }]);
    expect(r).toEqual({ count: 3, firstId: 1, lastId: 3 });
    const db = open(file);
    const rows = db.prepare('SELECT id, typeof(payload) AS t, payload, metadata, available_at, attempts FROM throughway_events ORDER BY id').all() as any[];
    expect(rows.map((x) => x.t)).toEqual(['text', 'blob', 'text']);
    expect(rows[1].payload).toEqual(Buffer.from([1, 2, 3]));
    expect(rows[2].metadata).toBe('{"source":"api"}');
    expect(rows[2].available_at).toBe(later);
    expect(rows.every((x) => x.attempts === 0)).toBe(true);
    expect(enqueue(db, Array.from({ length: 250 }, (_, i) => `p${i}`))).toEqual({ count: 250, firstId: 4, lastId: 253 });
    db.close();
    expect(() => enqueue(file, [42 as never])).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_ARGUMENT', message: expect.stringContaining('item 0') }));
    expect(countPending(file)).toBe(253);
  });
});

describe('options', () => {
  test('are checked up front and errors name the option path and the value', () => {
    const bad: [unknown, RegExp][] = [
      [{}, /`sqliteQueue.database`/],
      [{ database: ':memory:' }, /`sqliteQueue.database`/],
      [{ database: 'q.db', leaseMs: 0 }, /`sqliteQueue.leaseMs`.*`0` \(number\)/],
      [{ database: 'q.db', pollInterval: 'fast' }, /`sqliteQueue.pollInterval`.*"fast"/],
      [{ database: 'q.db', maxAttempts: 1.5 }, /`sqliteQueue.maxAttempts`/],
      [{ database: 'q.db', backoff: { baseMs: -1 } }, /`sqliteQueue.backoff.baseMs`/],
      [{ database: 'q.db', backoff: { base: 1 } }, /Unknown option `sqliteQueue.backoff.base`/],
      [{ database: 'q.db', backoff: { baseMs: 100, maxMs: 10 } }, /`sqliteQueue.backoff.maxMs`/],
      [{ database: 'q.db', onSuccess: 'archive' }, /`sqliteQueue.onSuccess`.*"archive"/],
      [{ database: 'q.db', table: 'a b' }, /`sqliteQueue.table`/],
      [{ database: 'q.db', lease: 5 }, /Unknown option `sqliteQueue.lease`/],
    ];
    for (const [options, message] of bad) {
      let error: any;
      try {
        sqliteQueue(options as SqliteQueueOptions);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(options)).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', name: 'ThroughwayError' });
      expect(error.message).toMatch(message);
      expect(error.details.path).toMatch(/^sqliteQueue\./);
    }
  });

  test('migrate: false refuses a missing table at init', () => {
    const file = tmpDb();
    const p = sqliteQueue({ database: file, migrate: false })(0);
    expect(() => p.init(controller())).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_SQLITE_SCHEMA' }));
  });
});

describe('claims', () => {
  test('a claim leases rows: a second producer cannot claim them while the lease holds', () => {
    const file = tmpDb();
    migrate(file);
    enqueue(file, ['a', 'b', 'c', 'd', 'e']);
    const { p: one } = producer({ database: file });
    const { p: two } = producer({ database: file }, 1);
    const first = one.handleDemand(3);
    expect(first.map((m) => m.data)).toEqual(['a', 'b', 'c']);
    expect(first[0]!.metadata).toEqual({ id: 1, attempts: 1, deliveries: 0 });
    expect(first[0]!.acknowledger!.data).toEqual({ id: 1, attempts: 1, deliveries: 0, lease: expect.any(Number), seq: 0 });
    const second = two.handleDemand(5);
    expect(second.map((m) => m.data)).toEqual(['d', 'e']);
    expect(two.owed).toBe(3);
    const leased = leasedRows(file);
    expect(leased.map((r) => [r.id, r.leased_by])).toEqual([
      [1, one.leasedBy],
      [2, one.leasedBy],
      [3, one.leasedBy],
      [4, two.leasedBy],
      [5, two.leasedBy],
    ]);
    expect(leased.every((r) => r.lease_until > Date.now())).toBe(true);
    expect(leasedRows(file, { holderPrefix: two.leasedBy! }).map((r) => r.id)).toEqual([4, 5]);
    // One lease row per claim, not a write per row.
    const db = open(file);
    expect(db.prepare('SELECT first_id, last_id, leased_by FROM throughway_events_leases ORDER BY id').raw().all()).toEqual([
      [1, 3, one.leasedBy],
      [4, 5, two.leasedBy],
    ]);
    db.close();
    expect(queueCounts(file)).toMatchObject({ ready: 0, leased: 5 });
  });

  test('payloads are delivered as stored (never parsed); stored metadata is spread into message.metadata', () => {
    const file = tmpDb();
    migrate(file);
    enqueue(file, ['{"not":"parsed"}', Buffer.from('bytes'), { payload: 'm', metadata: { source: 'api', id: 'ignored' } }]);
    const { p } = producer({ database: file });
    const ms = p.handleDemand(3);
    expect(ms[0]!.data).toBe('{"not":"parsed"}');
    expect(Buffer.isBuffer(ms[1]!.data)).toBe(true);
    expect(ms[2]!.metadata).toEqual({ source: 'api', id: 3, attempts: 1, deliveries: 0 });
    const { p: bare } = producer({ database: tmpDbWith(['z']), metadata: false });
    expect(bare.handleDemand(1)[0]!.metadata).toEqual({});
  });

  test('demand is an increment: unmet demand is kept and met by polling, through controller.push', async () => {
    const file = tmpDb();
    migrate(file);
    const { p, c } = producer({ database: file, pollInterval: 20 });
    expect(p.handleDemand(4)).toEqual([]);
    expect(p.handleDemand(2)).toEqual([]);
    expect(p.owed).toBe(6);
    enqueue(file, ['a', 'b', 'c']);
    await waitFor(() => c.pushed.length === 3, 'three rows pushed');
    expect(p.owed).toBe(3);
    enqueue(file, ['d', 'e', 'f', 'g', 'h']);
    await waitFor(() => c.pushed.length === 6, 'six rows pushed');
    await sleep(100);
    // Never more than the demand received.
    expect(c.pushed.map((m) => m.data)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(p.owed).toBe(0);
  });

  test('prepareForDraining stops polling; terminate closes the connection', async () => {
    const file = tmpDb();
    migrate(file);
    const { p, c } = producer({ database: file, pollInterval: 10 });
    p.handleDemand(5);
    p.prepareForDraining();
    enqueue(file, ['a']);
    await sleep(80);
    expect(c.pushed).toEqual([]);
    expect(p.handleDemand(1)).toEqual([]);
    p.terminate();
    p.terminate();
    expect(countPending(file)).toBe(1);
  });

  test('with prefetch, a claim takes more than the demand and keeps the rest leased in memory; draining gives them back', () => {
    const file = tmpDbWith(Array.from({ length: 20 }, (_, i) => `r${i}`));
    const { p } = producer({ database: file, prefetch: 10 });
    expect(p.handleDemand(2).map((m) => m.data)).toEqual(['r0', 'r1']);
    expect(queueCounts(file)).toMatchObject({ leased: 12, ready: 8 });
    expect(p.handleDemand(3).map((m) => m.data)).toEqual(['r2', 'r3', 'r4']);
    expect(queueCounts(file)).toMatchObject({ leased: 12 });
    p.prepareForDraining();
    expect(queueCounts(file)).toMatchObject({ leased: 5, ready: 15 });
    const db = open(file);
    // Given back undelivered: their delivery count is undone.
    expect(db.prepare('SELECT attempts FROM throughway_events WHERE id = 6').pluck().get()).toBe(0);
    db.close();
  });
});

describe('acks', () => {
  test('successful rows are deleted; stats count them', async () => {
    const file = tmpDbWith(['a', 'b', 'c', 'd']);
    const { p } = producer({ database: file });
    const ms = p.handleDemand(4);
    await ack([ms[0]!, ms[1]!, ms[3]!]);
    const db = open(file);
    expect(db.prepare('SELECT id FROM throughway_events').pluck().all()).toEqual([3]);
    db.close();
    expect(p.stats()).toEqual({ claimed: 4, acked: 3, committed: 0, retried: 0, deadLettered: 0, errors: 0 });
  });

  test("onSuccess 'mark_done' keeps the rows, marked done, and claims skip them", async () => {
    const file = tmpDbWith(['a', 'b', 'c']);
    const { p } = producer({ database: file, onSuccess: 'mark_done' });
    const ms = p.handleDemand(2);
    await ack(ms);
    expect(queueCounts(file)).toMatchObject({ done: 2, leased: 0, ready: 1 });
    expect(countPending(file)).toBe(1);
    expect(p.handleDemand(5).map((m) => m.data)).toEqual(['c']);
  });

  test('queueDrained: false while any row is ready, leased or delayed; true once each is acked, marked done or dead-lettered', async () => {
    const file = tmpDb();
    migrate(file);
    expect(queueDrained(file)).toBe(true);
    enqueue(file, ['ok', 'retry', 'dead', 'kept']);
    expect(queueDrained(file)).toBe(false);
    const { p, c } = producer({ database: file, onSuccess: 'mark_done', backoff: { baseMs: 300, maxMs: 300 }, pollInterval: 10 });
    const [ok, retry, dead, kept] = p.handleDemand(4) as [ThroughwayMessage, ThroughwayMessage, ThroughwayMessage, ThroughwayMessage];
    dead.acknowledger!.data = queueAcknowledger.configure!(dead.acknowledger!.ref, dead.acknowledger!.data, { retry: false });
    await ack([ok], [fail(retry, 'later'), fail(dead, 'never')]);
    expect(queueCounts(file)).toEqual({ ready: 0, leased: 1, delayed: 1, done: 1, dead: 1 });
    expect(queueDrained(file)).toBe(false);
    await ack([kept]);
    expect(queueCounts(file)).toMatchObject({ leased: 0, delayed: 1 });
    expect(queueDrained(file)).toBe(false);
    expect(p.handleDemand(1)).toEqual([]);
    await waitFor(() => c.pushed.length === 1, 'the retried row, after its backoff');
    expect(c.pushed[0]!.data).toBe('retry');
    await ack([c.pushed[0]!]);
    expect(queueCounts(file)).toEqual({ ready: 0, leased: 0, delayed: 0, done: 3, dead: 1 });
    const db = open(file);
    expect(queueDrained(db)).toBe(true);
    db.close();
    expect(queueDrained(file)).toBe(true);
    expect(() => queueDrained(file, { table: 'x"; DROP TABLE y; --' })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`queueDrained.table`') }));
  });

  test('a failed row goes back to pending with attempts incremented, last_error and a backoff', async () => {
    const file = tmpDbWith(['a', 'b', 'c']);
    const { p, c } = producer({ database: file, backoff: { baseMs: 300, maxMs: 10_000 }, pollInterval: 10 });
    const ms = p.handleDemand(3);
    const before = Date.now();
    await ack([ms[0]!], [fail(ms[1]!, 'not today'), Object.assign(ms[2]!, { status: { kind: 'error', error: { name: 'TypeError', message: 'boom' } } })]);
    const db = open(file);
    const rows = db.prepare('SELECT id, attempts, available_at, last_error FROM throughway_events ORDER BY id').all() as any[];
    db.close();
    expect(rows.map((r) => [r.id, r.attempts, r.last_error])).toEqual([
      [2, 1, 'not today'],
      [3, 1, 'boom'],
    ]);
    // Counted as of before the ack: a pause here must not let the 300 ms backoff run out.
    expect(queueCounts(file, { now: before })).toMatchObject({ leased: 0, delayed: 2 });
    for (const r of rows) expect(r.available_at).toBeGreaterThanOrEqual(before + 300);
    expect(p.stats()).toMatchObject({ acked: 1, retried: 2 });
    // Not claimable during the backoff, claimable after: the rows are pushed only once it ran out.
    const pushedAt: number[] = [];
    const push = c.push.bind(c);
    c.push = (events: unknown[]) => {
      pushedAt.push(Date.now());
      push(events);
    };
    expect(p.handleDemand(2)).toEqual([]);
    await waitFor(() => c.pushed.length === 2, 'retried rows claimed after the backoff');
    expect(Math.min(...pushedAt)).toBeGreaterThanOrEqual(Math.min(...rows.map((r) => r.available_at)));
    expect(c.pushed.map((m) => m.metadata)).toEqual([
      { id: 2, attempts: 2, deliveries: 0 },
      { id: 3, attempts: 2, deliveries: 0 },
    ]);
    // Second failure: backoff doubles.
    const t2 = Date.now();
    await ack([], [fail(c.pushed[0]!, { code: 'E_RATE', retryIn: 5 })]);
    const db2 = open(file);
    const r2 = db2.prepare('SELECT attempts, available_at, last_error FROM throughway_events WHERE id = 2').get() as any;
    db2.close();
    expect(r2.attempts).toBe(2);
    expect(r2.last_error).toBe('{"code":"E_RATE","retryIn":5}');
    expect(r2.available_at).toBeGreaterThanOrEqual(t2 + 600);
  });

  test('past maxAttempts a row is moved to the dead-letter table with its last error', async () => {
    const file = tmpDbWith(['poison', 'fine']);
    const { p, c } = producer({ database: file, maxAttempts: 3, backoff: () => 0, pollInterval: 5 });
    let delivered = p.handleDemand(1);
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(delivered[0]!.metadata).toMatchObject({ id: 1, attempts: attempt });
      await ack([], [fail(delivered[0]!, `failure ${attempt}`)]);
      c.pushed.length = 0;
      delivered = p.handleDemand(1);
      if (delivered.length === 0) {
        await waitFor(() => c.pushed.length === 1, 'next delivery');
        delivered = [...c.pushed];
      }
    }
    // The third failure dead-lettered row 1; the next claim got row 2.
    expect(delivered[0]!.data).toBe('fine');
    const dead = deadLetters(file);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ id: 1, payload: 'poison', attempts: 3, last_error: 'failure 3' });
    expect(countPending(file)).toBe(1);
    expect(p.stats()).toMatchObject({ retried: 2, deadLettered: 1 });
  });

  test('configure { retry: false } dead-letters at once on failure; unknown options throw naming them', async () => {
    const file = tmpDbWith(['bad', 'good']);
    const { p } = producer({ database: file, maxAttempts: 10 });
    const [bad, good] = p.handleDemand(2);
    const a = bad!.acknowledger!;
    a.data = queueAcknowledger.configure!(a.ref, a.data, { retry: false });
    expect(a.data).toEqual({ id: 1, attempts: 1, deliveries: 0, lease: expect.any(Number), seq: 0, retry: false });
    await ack([good!], [fail(bad!, { name: 'ValidationError', message: 'missing field total' })]);
    expect(deadLetters(file)).toEqual([expect.objectContaining({ id: 1, attempts: 1, last_error: 'missing field total' })]);
    expect(countPending(file)).toBe(0);
    expect(() => queueAcknowledger.configure!(a.ref, a.data, { retry: false, delay: 5, foo: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringMatching(/`delay`, `foo`/) }),
    );
    expect(() => queueAcknowledger.configure!(a.ref, a.data, { retry: 'no' })).toThrow(/configureAck.retry/);
  });

  test('acks after terminate are refused (the rows come back when their lease expires)', async () => {
    const file = tmpDbWith(['a']);
    const { p } = producer({ database: file });
    const [m] = p.handleDemand(1);
    p.terminate();
    await expect(ack([m!])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_PRODUCER_TERMINATED' });
    expect(countPending(file)).toBe(1);
  });

  test('pending acks are written by terminate', async () => {
    const file = tmpDbWith(['a', 'b']);
    const { p } = producer({ database: file });
    const ms = p.handleDemand(2);
    const done = ack(ms);
    p.terminate();
    await done;
    expect(countPending(file)).toBe(0);
  });
});

describe('ack window (acks are written in delivery order, in ranges)', () => {
  test('an ack behind an unacked row waits for it, then both are written in one range', async () => {
    const file = tmpDbWith(['a', 'b', 'c']);
    const { p } = producer({ database: file, leaseMs: 3_600_000 });
    const [m1, m2, m3] = p.handleDemand(3);
    await ack([m1!]);
    const settled: string[] = [];
    const tLate = Date.now();
    const late = ack([m3!]).then(() => settled.push('c'));
    await sleep(40);
    // Row 3 waits behind row 2, which is still in flight (for up to maxWaitMs, 500 ms): checked
    // only if this process was not paused past that (then it is written anyway, by design).
    const { maxWaitMs } = m3!.acknowledger!.ref as { maxWaitMs: number };
    if (Date.now() - tLate < maxWaitMs - 20) {
      expect(settled).toEqual([]);
      expect(countPending(file)).toBe(2);
    }
    await ack([m2!]).then(() => settled.push('b'));
    await late;
    expect(settled.sort()).toEqual(['b', 'c']);
    expect(countPending(file)).toBe(0);
    expect(p.stats()).toMatchObject({ claimed: 3, acked: 3 });
  });

  test('acks behind a row that never resolves are written after a quarter of the lease', async () => {
    const file = tmpDbWith(['stuck', 'b', 'c']);
    const { p } = producer({ database: file, leaseMs: 400 });
    const [m1, m2, m3] = p.handleDemand(3);
    await ack([m2!], [fail(m3!, 'bad')]);
    const db = open(file);
    expect(db.prepare('SELECT id, attempts, last_error FROM throughway_events ORDER BY id').raw().all()).toEqual([
      [1, 0, null],
      [3, 1, 'bad'],
    ]);
    expect(p.stats()).toMatchObject({ acked: 1, retried: 1 });
    // The late ack of the stuck row is written on its own.
    await ack([m1!]);
    expect(db.prepare('SELECT id FROM throughway_events ORDER BY id').pluck().all()).toEqual([3]);
    db.close();
    expect(p.stats()).toMatchObject({ acked: 2, retried: 1 });
  });

  test('acks of messages the producer did not deliver (no sequence) are written at once', async () => {
    const file = tmpDbWith(['a', 'b']);
    const { p } = producer({ database: file, leaseMs: 3_600_000 });
    const [m1, m2] = p.handleDemand(2);
    // Row 1 stays in flight; the copy of message 2 lost its sequence number.
    const copy = { ...m2!, acknowledger: { ...m2!.acknowledger!, data: { id: 2, attempts: 1 } } };
    await ack([copy]);
    expect(countPending(file)).toBe(1);
    await ack([m1!]);
    expect(countPending(file)).toBe(0);
  });
});

describe('leases', () => {
  test('an expired lease makes the row claimable again; the stale holder can no longer fail it back, but its late success deletes it', async () => {
    const file = tmpDbWith(['a', 'b']);
    const { p: one } = producer({ database: file, leaseMs: 100 });
    const claimedAt = Date.now();
    const mine = one.handleDemand(2);
    // Counted as of the claim: a pause before this line must not let the 100 ms lease run out.
    expect(queueCounts(file, { now: claimedAt })).toMatchObject({ leased: 2, ready: 0 });
    await sleep(150);
    expect(queueCounts(file)).toMatchObject({ leased: 0, ready: 2 });
    const { p: three } = producer({ database: file, leaseMs: 10_000 }, 2);
    const again = three.handleDemand(2);
    expect(ids(again)).toEqual([1, 2]);
    // An expired lease is a delivery with no ack: it counts in `deliveries`, not in `attempts`.
    expect(again[0]!.metadata).toEqual({ id: 1, attempts: 1, deliveries: 1 });
    // The first holder's late failure does not touch rows now leased by another producer...
    await ack([], [fail(mine[0]!, 'late')]);
    expect(queueCounts(file)).toMatchObject({ leased: 2, delayed: 0 });
    // ...but its late success deletes the row: it was processed, and a failure of the new
    // delivery must not dead-letter it.
    await ack([mine[1]!]);
    expect(countPending(file)).toBe(1);
    await ack([], [fail(again[1]!, 'too late')]);
    expect(deadLetters(file)).toEqual([]);
    await ack([again[0]!]);
    expect(countPending(file)).toBe(0);
    expect(open(file).prepare('SELECT count(*) FROM throughway_events_leases').pluck().get()).toBe(0);
  });

  test('a row whose lease expired maxDeliveries times (its consumer kept dying) is dead-lettered at the next claim, saying so', async () => {
    const file = tmpDbWith(['crasher', 'ok']);
    for (let i = 0; i < 3; i++) {
      // maxAttempts 1: expired leases are not failures, so they never reach it.
      const { p } = producer({ database: file, leaseMs: 1, maxAttempts: 1, maxDeliveries: 3 }, i);
      expect(p.handleDemand(1).map((m) => m.data)).toEqual(['crasher']);
      await sleep(5);
    }
    const { p } = producer({ database: file, leaseMs: 1000, maxAttempts: 1, maxDeliveries: 3 }, 5);
    expect(p.handleDemand(1).map((m) => m.data)).toEqual(['ok']);
    expect(deadLetters(file)).toEqual([
      expect.objectContaining({ id: 1, attempts: 0, deliveries: 3, last_error: 'no ack after 3 deliveries (each time the process died or the lease ran out)' }),
    ]);
    expect(p.stats().deadLettered).toBe(1);
  });

  test('rows behind the scan position (retries) are found once fresh rows run out', async () => {
    const file = tmpDbWith(Array.from({ length: 10 }, (_, i) => `r${i}`));
    const { p } = producer({ database: file, backoff: () => 0 });
    const first = p.handleDemand(2);
    await ack([], [fail(first[0]!, 'x'), fail(first[1]!, 'y')]);
    const next = p.handleDemand(10);
    expect(ids(next).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('sqliteQueue source', () => {
  test('is a factory usable as producer.module, with summed stats', async () => {
    const file = tmpDbWith(['a', 'b', 'c']);
    const source = sqliteQueue({ database: file });
    expect(typeof source).toBe('function');
    const a = source(0);
    const b = source(1);
    a.init(controller());
    b.init(controller());
    started.push(a, b);
    expect(source.producers).toEqual([a, b]);
    const ms = [...a.handleDemand(2), ...b.handleDemand(2)];
    await ack(ms.slice(0, 2));
    await ack(ms.slice(2));
    expect(source.stats()).toEqual({ claimed: 3, acked: 3, committed: 0, retried: 0, deadLettered: 0, errors: 0 });
    expect(a.leasedBy).not.toBe(b.leasedBy);
  });
});
