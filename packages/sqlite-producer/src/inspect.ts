import { withDatabase, type SqliteDatabase } from './connection.js';
import { CHECKPOINT_TABLE, CURSOR_FAILURES_TABLE, columnsOf } from './migrate.js';
import { invalid, quoteIdentifier, tableName } from './options.js';

/** A row of `<table>_dead`. */
export interface DeadLetter {
  id: number;
  payload: string | Buffer;
  metadata: string | null;
  /** Deliveries that ended in a failure. */
  attempts: number;
  /** Deliveries that ended with no ack (the process died or the lease ran out). */
  deliveries: number;
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
 * True when no row of the queue waits to be acked (`countPending(...) === 0`, without counting:
 * the first pending row ends the scan). Takes a connection or a file path.
 *
 * @example
 * while (!queueDrained(db, { table: 'orders' })) await setTimeout(100)
 */
export function queueDrained(db: SqliteDatabase | string, options: { table?: string } = {}): boolean {
  const t = quoteIdentifier(tableName(options.table, 'queueDrained.table', 'throughway_events'), 'queueDrained.table');
  return withDatabase(db, (conn) => conn.prepare(`SELECT NOT EXISTS (SELECT 1 FROM ${t} WHERE done_at IS NULL)`).pluck().get() === 1);
}

/** SQL true when lease `l` holds queue row `q` at `@now` (the rule of queue-store.ts). */
const LEASE_HOLDS_ROW = 'q.id BETWEEN l.first_id AND l.last_id AND l.id > q.released_lease AND q.available_at <= l.created_at AND l.lease_until >= @now';

/** SQL true for a row of `q` held by a live lease of `<table>_leases` at `@now`. */
function heldSql(leases: string): string {
  return `EXISTS (SELECT 1 FROM ${leases} l WHERE ${LEASE_HOLDS_ROW})`;
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
  const held = heldSql(quoteIdentifier(`${table}_leases`, 'queueCounts.table'));
  const now = options.now ?? Date.now();
  return withDatabase(db, (conn) => {
    const row = conn
      .prepare(
        `SELECT
           coalesce(sum(done_at IS NULL AND held = 0 AND available_at <= @now), 0) AS ready,
           coalesce(sum(done_at IS NULL AND held = 1), 0) AS leased,
           coalesce(sum(done_at IS NULL AND held = 0 AND available_at > @now), 0) AS delayed,
           coalesce(sum(done_at IS NOT NULL), 0) AS done
         FROM (SELECT done_at, available_at, ${held} AS held FROM ${t} q)`,
      )
      .get({ now }) as Omit<QueueCounts, 'dead'>;
    const deadCount = conn.prepare(`SELECT count(*) FROM ${dead}`).pluck().get() as number;
    return { ...row, dead: deadCount };
  });
}

/** A row in flight: its id, and who holds its lease until when. */
export interface LeasedRow {
  id: number;
  leased_by: string;
  lease_until: number;
}

/**
 * The rows held by live leases, in id order, optionally only those of holders whose `leased_by`
 * (`host:pid:index:tag`) starts with `holderPrefix`.
 *
 * @example
 * leasedRows(db, { holderPrefix: `${os.hostname()}:${pid}:` }).length // rows that process holds
 */
export function leasedRows(db: SqliteDatabase | string, options: { table?: string; holderPrefix?: string; now?: number } = {}): LeasedRow[] {
  const table = tableName(options.table, 'leasedRows.table', 'throughway_events');
  const t = quoteIdentifier(table, 'leasedRows.table');
  const leases = quoteIdentifier(`${table}_leases`, 'leasedRows.table');
  const prefix = options.holderPrefix ?? '';
  return withDatabase(db, (conn) =>
    conn
      .prepare(
        `SELECT q.id, l.leased_by, l.lease_until FROM ${t} q JOIN ${leases} l ON ${LEASE_HOLDS_ROW}
         WHERE q.done_at IS NULL AND substr(l.leased_by, 1, length(@prefix)) = @prefix
         ORDER BY q.id`,
      )
      .all({ now: options.now ?? Date.now(), prefix }) as LeasedRow[],
  );
}

/**
 * Ends at once the leases of holders whose `leased_by` starts with `holderPrefix` (say,
 * `host:pid:` of a process known to be dead), instead of when they run out: the next claim
 * counts their rows' delivery as ended without an ack (`deliveries + 1`) and hands them out again. Returns the
 * number of rows those leases held. Never for a live holder: it would process them twice.
 *
 * @example
 * releaseLeases(db, { holderPrefix: `${os.hostname()}:${deadPid}:` }) // 120
 */
export function releaseLeases(db: SqliteDatabase | string, options: { table?: string; holderPrefix: string }): number {
  const table = tableName(options.table, 'releaseLeases.table', 'throughway_events');
  const leases = quoteIdentifier(`${table}_leases`, 'releaseLeases.table');
  if (typeof options.holderPrefix !== 'string' || options.holderPrefix.length === 0) invalid('releaseLeases.holderPrefix', 'a non-empty string', options.holderPrefix);
  return withDatabase(db, (conn) =>
    conn
      .transaction(() => {
        const held = leasedRows(conn, { table, holderPrefix: options.holderPrefix }).length;
        conn.prepare(`UPDATE ${leases} SET lease_until = -1 WHERE substr(leased_by, 1, length(@prefix)) = @prefix`).run({ prefix: options.holderPrefix });
        return held;
      })
      .immediate(),
  );
}

/**
 * The rows of `<table>_dead`, in id order: what failed past `maxAttempts`, was failed with
 * `configureAck(m, { retry: false })`, or reached `maxDeliveries` deliveries without an ack (it
 * kept killing its consumer; `last_error` says so).
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
