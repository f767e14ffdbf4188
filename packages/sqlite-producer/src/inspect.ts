import { withDatabase, type SqliteDatabase } from './connection.js';
import { CHECKPOINT_TABLE, CURSOR_FAILURES_TABLE, columnsOf } from './migrate.js';
import { quoteIdentifier, tableName } from './options.js';

/** A row of `<table>_dead`. */
export interface DeadLetter {
  id: number;
  payload: string | Buffer;
  metadata: string | null;
  attempts: number;
  last_error: string | null;
  created_at: number;
  failed_at: number;
}

/** Counts of a queue table by state, at one instant. */
export interface QueueCounts {
  /** Claimable now. */
  ready: number;
  /** Leased and not expired: being processed somewhere. */
  leased: number;
  /** Waiting for `available_at` (retries in backoff, scheduled rows). */
  delayed: number;
  /** Marked done (`onSuccess: 'mark_done'`). */
  done: number;
  /** In `<table>_dead`. */
  dead: number;
}

/**
 * Rows not yet done: ready, leased or delayed. 0 once every row was acked successfully (or
 * dead-lettered). Takes a connection or a file path.
 *
 * @example
 * countPending('queue.db') // 0 when the queue is drained
 */
export function countPending(db: SqliteDatabase | string, options: { table?: string } = {}): number {
  const t = quoteIdentifier(tableName(options.table, 'countPending.table', 'throughway_events'), 'countPending.table');
  return withDatabase(db, (conn) => conn.prepare(`SELECT count(*) FROM ${t} WHERE done_at IS NULL`).pluck().get() as number);
}

/**
 * A queue's rows by state.
 *
 * @example
 * queueCounts(db, { table: 'orders' }) // { ready: 10, leased: 2, delayed: 1, done: 0, dead: 0 }
 */
export function queueCounts(db: SqliteDatabase | string, options: { table?: string; now?: number } = {}): QueueCounts {
  const table = tableName(options.table, 'queueCounts.table', 'throughway_events');
  const t = quoteIdentifier(table, 'queueCounts.table');
  const dead = quoteIdentifier(`${table}_dead`, 'queueCounts.table');
  const now = options.now ?? Date.now();
  return withDatabase(db, (conn) => {
    const row = conn
      .prepare(
        `SELECT
           coalesce(sum(done_at IS NULL AND (lease_until IS NULL OR lease_until < @now) AND available_at <= @now), 0) AS ready,
           coalesce(sum(done_at IS NULL AND lease_until >= @now), 0) AS leased,
           coalesce(sum(done_at IS NULL AND (lease_until IS NULL OR lease_until < @now) AND available_at > @now), 0) AS delayed,
           coalesce(sum(done_at IS NOT NULL), 0) AS done
         FROM ${t}`,
      )
      .get({ now }) as Omit<QueueCounts, 'dead'>;
    const deadCount = conn.prepare(`SELECT count(*) FROM ${dead}`).pluck().get() as number;
    return { ...row, dead: deadCount };
  });
}

/**
 * The rows of `<table>_dead`, in id order: what failed past `maxAttempts`, was failed with
 * `configureAck(m, { retry: false })`, or kept killing its consumer.
 *
 * @example
 * for (const row of deadLetters(db)) console.log(row.id, row.attempts, row.last_error)
 */
export function deadLetters(db: SqliteDatabase | string, options: { table?: string; limit?: number } = {}): DeadLetter[] {
  const table = tableName(options.table, 'deadLetters.table', 'throughway_events');
  const dead = quoteIdentifier(`${table}_dead`, 'deadLetters.table');
  const limit = options.limit ?? -1;
  return withDatabase(db, (conn) => conn.prepare(`SELECT * FROM ${dead} ORDER BY id LIMIT ?`).all(limit) as DeadLetter[]);
}

/**
 * The committed position of a cursor (the key below and at which every row was acked), or
 * undefined if it has none yet.
 *
 * @example
 * readCheckpoint(db, 'users') // 4211
 */
export function readCheckpoint(db: SqliteDatabase | string, name: string): unknown {
  return withDatabase(db, (conn) => {
    if (columnsOf(conn, CHECKPOINT_TABLE).length === 0) return undefined;
    const row = conn.prepare(`SELECT position FROM ${CHECKPOINT_TABLE} WHERE name = ?`).get(name) as { position: unknown } | undefined;
    return row?.position;
  });
}

/** A row of `throughway_cursor_failures`. */
export interface CursorFailure {
  checkpoint_name: string;
  key: unknown;
  /** The row as JSON. */
  row: string | null;
  last_error: string | null;
  failed_at: number;
}

/**
 * The rows whose messages failed in cursor mode (they count as done for the checkpoint).
 *
 * @example
 * cursorFailures(db, 'users').map((f) => f.key)
 */
export function cursorFailures(db: SqliteDatabase | string, name: string): CursorFailure[] {
  return withDatabase(db, (conn) => {
    if (columnsOf(conn, CURSOR_FAILURES_TABLE).length === 0) return [];
    return conn.prepare(`SELECT * FROM ${CURSOR_FAILURES_TABLE} WHERE checkpoint_name = ? ORDER BY key`).all(name) as CursorFailure[];
  });
}
