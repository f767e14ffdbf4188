import type pg from 'pg';
import { queueNames } from './names.js';
import { tableName } from './options.js';

/** Counts of a queue table by state, at one instant (the database's clock). */
export interface QueueCounts {
  /** Claimable now. */
  ready: number;
  /** Leased and not expired: being processed somewhere. */
  leased: number;
  /** Waiting for `available_at` with no lease (retries in backoff, scheduled rows). */
  delayed: number;
  /** Marked done (`onSuccess: 'mark_done'`). */
  done: number;
  /** In `<table>_dead`. */
  dead: number;
}

/** A row of `<table>_dead`. */
export interface DeadLetter {
  id: number;
  payload: string;
  metadata: Record<string, unknown> | null;
  attempts: number;
  deliveries: number;
  last_error: string | null;
  created_at: Date;
  failed_at: Date;
}

/**
 * A queue's rows by state. Reads the whole table (~45 ms of the server's CPU at 200,000 rows): an
 * inspection call, not a poll for emptiness (`queueDrained` answers that from the claim index).
 *
 * @example
 * await queueCounts(pool, { table: 'orders_queue' }) // { ready: 10, leased: 2, delayed: 1, done: 0, dead: 0 }
 */
export async function queueCounts(db: pg.Pool | pg.ClientBase, options: { table?: string } = {}): Promise<QueueCounts> {
  const n = queueNames(tableName(options.table, 'queueCounts.table', 'throughway_events'));
  const { rows } = await db.query<QueueCounts>(`SELECT
      count(*) FILTER (WHERE done_at IS NULL AND available_at <= now())::int AS ready,
      count(*) FILTER (WHERE done_at IS NULL AND available_at > now() AND lease IS NOT NULL)::int AS leased,
      count(*) FILTER (WHERE done_at IS NULL AND available_at > now() AND lease IS NULL)::int AS delayed,
      count(*) FILTER (WHERE done_at IS NOT NULL)::int AS done,
      (SELECT count(*) FROM ${n.dead})::int AS dead
    FROM ${n.q}`);
  return rows[0]!;
}

/**
 * True when no row of the queue waits to be acked (none ready, leased or delayed; done and
 * dead-lettered rows do not count). An existence test on the claim index (`done_at IS NULL`), so
 * its cost does not grow with the table: the call to poll for the end of a run.
 *
 * @example
 * while (!(await queueDrained(pool, { table: 'orders_queue' }))) await setTimeout(100)
 */
export async function queueDrained(db: pg.Pool | pg.ClientBase, options: { table?: string } = {}): Promise<boolean> {
  const n = queueNames(tableName(options.table, 'queueDrained.table', 'throughway_events'));
  const { rows } = await db.query<{ drained: boolean }>(`SELECT NOT EXISTS (SELECT 1 FROM ${n.q} WHERE done_at IS NULL) AS drained`);
  return rows[0]!.drained;
}

/**
 * The dead letters of a queue, oldest first.
 *
 * @example
 * const [first] = await deadLetters(pool, { table: 'orders_queue' })
 * console.log(first.last_error, first.attempts, first.deliveries)
 */
export async function deadLetters(db: pg.Pool | pg.ClientBase, options: { table?: string; limit?: number } = {}): Promise<DeadLetter[]> {
  const n = queueNames(tableName(options.table, 'deadLetters.table', 'throughway_events'));
  const limit = options.limit === undefined ? null : Math.max(0, Math.trunc(options.limit));
  const { rows } = await db.query<DeadLetter>(`SELECT id::float8 AS id, payload, metadata, attempts, deliveries, last_error, created_at, failed_at FROM ${n.dead} ORDER BY id LIMIT $1`, [limit]);
  return rows;
}
