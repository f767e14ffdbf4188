// Deliveries, leases and late acks, driven on the store with explicit clock values (`now`), so
// that a lease runs out exactly when the test says and nothing waits for the real clock.
import { afterEach, describe, expect, test } from 'vitest';
import Database from 'better-sqlite3';
import { deadLetters, migrate } from '@throughway/sqlite-producer';
import { openQueueStore, type ClaimedRow, type Failure, type QueueStore, type StoreConfig } from '../src/queue-store.js';
import { open, tmpDb, tmpDbWith } from './helpers.js';

const stores: QueueStore[] = [];
/** The test's clock origin: after every row's available_at (enqueue stamps the real time). */
const T = Date.now() + 3_600_000;
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function store(database: string, leasedBy: string, options: Partial<StoreConfig> = {}): QueueStore {
  const config: StoreConfig = { database, busyTimeout: 5000, migrate: true, table: 'throughway_events', leaseMs: 100, maxAttempts: 5, maxDeliveries: 50, onSuccess: 'delete', ...options };
  const s = openQueueStore(config, leasedBy);
  stores.push(s);
  return s;
}

const ids = (rows: ClaimedRow[]) => rows.map((r) => r.id);
const failure = (r: ClaimedRow, error: string, retry = true): Failure => ({ id: r.id, attempts: r.attempts, deliveries: r.deliveries, lease: r.lease, error, retry, retryAt: 0 });
const leaseCount = (file: string) => open(file).prepare('SELECT count(*) FROM throughway_events_leases').pluck().get() as number;

describe('late acks (an ack from a delivery whose lease expired)', () => {
  test('a late success ack does not count off the lease of the next delivery: its rows stay in flight', () => {
    const file = tmpDbWith(['a', 'b']);
    const s = store(file, 'one');
    const first = s.claim(2, 0, Infinity, T + 1000);
    // The lease (100 ms) ran out; the same store claims them again: delivery 2.
    const second = s.claim(2, 0, Infinity, T + 1200);
    expect(ids(second)).toEqual([1, 2]);
    expect(second.map((r) => [r.attempts, r.deliveries])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(second[0]!.lease).not.toBe(first[0]!.lease);
    // Delivery 1 of row 1 acks late, then delivery 2 of row 1 acks.
    expect(s.ack([1], [first[0]!.lease], [], T + 1210).acked).toBe(1);
    expect(s.ack([1], [second[0]!.lease], [], T + 1220).acked).toBe(0);
    // Row 2 is still in flight under delivery 2's lease: nobody may claim it.
    expect(s.claim(2, 0, Infinity, T + 1230)).toEqual([]);
    expect(store(file, 'two').claim(2, 0, Infinity, T + 1240)).toEqual([]);
    s.ack([2], [second[1]!.lease], [], T + 1250);
    expect(leaseCount(file)).toBe(0);
  });

  test('a late failure does not count off the next delivery\'s lease, and is not written back', () => {
    const file = tmpDbWith(['a']);
    const s = store(file, 'one');
    const [first] = s.claim(1, 0, Infinity, T + 1000);
    const [second] = s.claim(1, 0, Infinity, T + 1200);
    expect(second).toMatchObject({ id: 1, attempts: 1, deliveries: 1 });
    expect(s.ack([], [], [failure(first!, 'late')], T + 1210)).toEqual({ acked: 0, retried: 0, deadLettered: 0 });
    expect(s.claim(1, 0, Infinity, T + 1220)).toEqual([]);
    const row = open(file).prepare('SELECT attempts, deliveries, last_error FROM throughway_events').get();
    expect(row).toEqual({ attempts: 0, deliveries: 1, last_error: null });
    s.ack([1], [second!.lease], [], T + 1230);
    expect(leaseCount(file)).toBe(0);
  });

  test('a row processed by a late delivery is never dead-lettered by a later failing one', () => {
    const file = tmpDbWith(['a']);
    const a = store(file, 'a');
    const b = store(file, 'b');
    const [first] = a.claim(1, 0, Infinity, T + 1000);
    // Another process ends a's expired lease and takes the row.
    const [second] = b.claim(1, 0, Infinity, T + 1200);
    // a's delivery finished after all: the row was processed.
    expect(a.ack([1], [first!.lease], [], T + 1210).acked).toBe(1);
    expect(b.ack([], [], [failure(second!, 'permanent', false)], T + 1220)).toEqual({ acked: 0, retried: 0, deadLettered: 0 });
    expect(deadLetters(file)).toEqual([]);
    expect(leaseCount(file)).toBe(0);
  });

  test('a lease does not hold a row in backoff inside its range: the row is claimable when ready, and the lease\'s expiry does not count it', () => {
    const file = tmpDbWith(['a', 'b', 'c']);
    const s = store(file, 's');
    const t = store(file, 't', { leaseMs: 10_000 });
    const first = s.claim(3, 0, Infinity, T + 1000);
    // Row 2 fails: back to pending until 5000.
    s.ack([], [], [{ ...failure(first[1]!, 'x'), retryAt: T + 5000 }], T + 1010);
    // t ends s's expired lease and takes rows 1 and 3: its lease spans 1..3, row 2 included.
    expect(ids(t.claim(3, 0, Infinity, T + 1200))).toEqual([1, 3]);
    // Row 2 is ready at 5000 while t's lease still runs: it is not t's, so it is claimable.
    expect(ids(s.claim(3, 0, Infinity, T + 6000))).toEqual([2]);
    // Both leases ran out: rows 1 and 3 count t's delivery, row 2 only s's second one.
    expect(ids(t.claim(3, 0, Infinity, T + 20_000))).toEqual([1, 2, 3]);
    const counts = open(file).prepare('SELECT id, attempts, deliveries FROM throughway_events ORDER BY id').all();
    expect(counts).toEqual([
      { id: 1, attempts: 0, deliveries: 2 },
      { id: 2, attempts: 1, deliveries: 1 },
      { id: 3, attempts: 0, deliveries: 2 },
    ]);
  });
});

describe('deliveries without an ack are counted apart from failures', () => {
  test('expired leases never reach maxAttempts; maxDeliveries dead-letters with a reason that says so', () => {
    const file = tmpDbWith(['crasher', 'fine']);
    const s = store(file, 'one', { maxAttempts: 1, maxDeliveries: 3 });
    let now = T + 1000;
    for (let d = 0; d < 3; d++) {
      const rows = s.claim(1, 0, Infinity, now);
      expect(rows).toEqual([expect.objectContaining({ id: 1, attempts: 1, deliveries: d })]);
      now += 200;
    }
    // The third delivery ended with no ack too: the next claim dead-letters the row and goes on.
    expect(ids(s.claim(1, 0, Infinity, now))).toEqual([2]);
    expect(s.deadAtClaim).toBe(1);
    expect(deadLetters(file)).toEqual([
      expect.objectContaining({ id: 1, payload: 'crasher', attempts: 0, deliveries: 3, last_error: 'no ack after 3 deliveries (each time the process died or the lease ran out)' }),
    ]);
  });

  test('a failure after crashes keeps both counts; its dead letter names the failure', () => {
    const file = tmpDbWith(['x']);
    const s = store(file, 'one', { maxAttempts: 2 });
    s.claim(1, 0, Infinity, T + 1000);
    const [d2] = s.claim(1, 0, Infinity, T + 1200);
    s.ack([], [], [failure(d2!, 'bad 1')], T + 1210);
    const [d3] = s.claim(1, 0, Infinity, T + 1300);
    expect(d3).toMatchObject({ attempts: 2, deliveries: 1 });
    expect(s.ack([], [], [failure(d3!, 'bad 2')], T + 1310).deadLettered).toBe(1);
    expect(deadLetters(file)).toEqual([expect.objectContaining({ id: 1, attempts: 2, deliveries: 1, last_error: 'bad 2' })]);
  });
});

describe('migrate', () => {
  test('adds `deliveries` to a queue table made before it existed; refuses a table that is not a queue', () => {
    const file = tmpDb();
    const db = new Database(file);
    db.exec(`CREATE TABLE throughway_events (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL, metadata TEXT, attempts INTEGER NOT NULL DEFAULT 0,
      available_at INTEGER NOT NULL DEFAULT 0, released_lease INTEGER NOT NULL DEFAULT 0, leased_by TEXT, last_error TEXT, created_at INTEGER NOT NULL, done_at INTEGER)`);
    db.exec(`CREATE TABLE throughway_events_dead (id INTEGER PRIMARY KEY, payload BLOB NOT NULL, metadata TEXT, attempts INTEGER NOT NULL, last_error TEXT, created_at INTEGER NOT NULL, failed_at INTEGER NOT NULL)`);
    db.prepare('INSERT INTO throughway_events (payload, attempts, created_at) VALUES (?, 2, 0)').run('old');
    migrate(db);
    expect(db.prepare('SELECT payload, attempts, deliveries FROM throughway_events').get()).toEqual({ payload: 'old', attempts: 2, deliveries: 0 });
    expect(db.prepare("SELECT count(*) FROM pragma_table_info('throughway_events_dead') WHERE name = 'deliveries'").pluck().get()).toBe(1);
    db.exec('CREATE TABLE other (id INTEGER PRIMARY KEY, body TEXT)');
    expect(() => migrate(db, { table: 'other' })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_SQLITE_SCHEMA' }));
    db.close();
  });
});
