import { ThroughwayError } from '@throughway/workers';
import { withDatabase, type SqliteDatabase } from './connection.js';
import { invalid, ownTableName, quoteIdentifier } from './options.js';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Queue table. Default `'throughway_events'`; the dead-letter table is `<table>_dead`. */
  table?: string;
  /**
   * Also create the index `onSuccess: 'mark_done'` needs (`<table>_pending`, the ids of rows not
   * done), so that claims skip done rows without reading them. Producers in mark_done mode create
   * it themselves; it costs inserts and deletes about a tenth of their speed, so delete-mode
   * queues go without. Default false.
   */
  markDone?: boolean;
}

/** The name of the checkpoint table of cursor mode. */
export const CHECKPOINT_TABLE = 'throughway_checkpoints';
/** Where cursor mode records the rows whose messages failed. */
export const CURSOR_FAILURES_TABLE = 'throughway_cursor_failures';

const QUEUE_COLUMNS = ['id', 'payload', 'metadata', 'attempts', 'deliveries', 'available_at', 'released_lease', 'leased_by', 'last_error', 'created_at', 'done_at'];
const LEASE_COLUMNS = ['id', 'first_id', 'last_id', 'leased_by', 'lease_until', 'created_at'];
const DEAD_COLUMNS = ['id', 'payload', 'metadata', 'attempts', 'deliveries', 'last_error', 'created_at', 'failed_at'];
/**
 * Columns added after the first release: `migrate` adds them to a table made before (an
 * `ALTER TABLE ... ADD COLUMN` with a constant default is a change of the schema only, no row is
 * rewritten). Rows of such a table keep their `attempts`, which then counted crashes too.
 */
const ADDED_COLUMNS: Record<'queue' | 'dead', [string, string][]> = {
  queue: [['deliveries', 'INTEGER NOT NULL DEFAULT 0']],
  dead: [['deliveries', 'INTEGER NOT NULL DEFAULT 0']],
};

/**
 * Creates the queue table, its dead-letter table `<table>_dead`, its lease table `<table>_leases` and the checkpoint table
 * `throughway_checkpoints`, if they do not exist. Idempotent; safe to run from several processes
 * at once. Takes a connection or a file path.
 *
 * The queue table:
 * - `id INTEGER PRIMARY KEY AUTOINCREMENT`: ids only grow, so an id is never reused after its row
 *   is deleted (a late ack can never touch a newer row) and claims can resume scanning from the
 *   highest id they saw;
 * - `payload BLOB`: the column has no type affinity, so a TEXT payload stays TEXT and a Buffer stays
 *   a BLOB; it is handed to `message.data` as stored, never parsed;
 * - `metadata` (JSON text or NULL), `attempts` (deliveries that ended in a failure),
 *   `deliveries` (deliveries that ended with no ack: the process died or the lease ran out),
 *   `available_at` (ms since the epoch), `released_lease` (the newest lease that no longer holds
 *   it), `last_error`, `created_at`, `done_at` and `leased_by` (with `onSuccess: 'mark_done'`,
 *   who acked it).
 *
 * A queue table made by an earlier version, without `deliveries`, gets the column added (to it
 * and its dead-letter table); any other difference is refused with ERR_THROUGHWAY_SQLITE_SCHEMA.
 *
 * No secondary index: claims scan the primary key in id order from where the last claim
 * stopped, which measured faster than maintaining an index on every claim and ack.
 *
 * `<table>_leases` holds one row per claim: the id range it took, who took it and until when
 * (see the claim and ack rules in queue-store.ts); `<table>_dead` the dead letters.
 *
 * @example
 * import Database from 'better-sqlite3'
 * migrate(new Database('queue.db'), { table: 'orders' }) // orders, orders_dead, orders_leases, throughway_checkpoints
 */
export function migrate(db: SqliteDatabase | string, options: MigrateOptions = {}): void {
  if (options === null || typeof options !== 'object') invalid('migrate.options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (key !== 'table' && key !== 'markDone') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Unknown option \`migrate.${key}\`; the known ones are table, markDone`, {
        details: { path: `migrate.${key}`, received: (options as Record<string, unknown>)[key] },
      });
    }
  }
  const table = ownTableName(options.table, 'migrate.table', 'throughway_events');
  if (options.markDone !== undefined && typeof options.markDone !== 'boolean') invalid('migrate.markDone', 'a boolean', options.markDone);
  const q = quoteIdentifier(table, 'migrate.table');
  const dead = quoteIdentifier(`${table}_dead`, 'migrate.table');
  const pending = quoteIdentifier(`${table}_pending`, 'migrate.table');
  const leases = quoteIdentifier(`${table}_leases`, 'migrate.table');
  withDatabase(db, (conn) => {
    // One IMMEDIATE transaction: two processes migrating at once serialize instead of racing.
    conn.transaction(() => {
      conn.exec(`CREATE TABLE IF NOT EXISTS ${q} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        payload BLOB NOT NULL,
        metadata TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        deliveries INTEGER NOT NULL DEFAULT 0,
        available_at INTEGER NOT NULL DEFAULT 0,
        released_lease INTEGER NOT NULL DEFAULT 0,
        leased_by TEXT,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        done_at INTEGER
      )`);
      conn.exec(`CREATE TABLE IF NOT EXISTS ${dead} (
        id INTEGER PRIMARY KEY,
        payload BLOB NOT NULL,
        metadata TEXT,
        attempts INTEGER NOT NULL,
        deliveries INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        failed_at INTEGER NOT NULL
      )`);
      conn.exec(`CREATE TABLE IF NOT EXISTS ${leases} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        first_id INTEGER NOT NULL,
        last_id INTEGER NOT NULL,
        leased_by TEXT NOT NULL,
        lease_until INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      )`);
      if (options.markDone) conn.exec(`CREATE INDEX IF NOT EXISTS ${pending} ON ${q} (id) WHERE done_at IS NULL`);
      createCheckpointTable(conn);
      addColumns(conn, table, q, ADDED_COLUMNS.queue);
      addColumns(conn, `${table}_dead`, dead, ADDED_COLUMNS.dead);
      checkColumns(conn, table, QUEUE_COLUMNS);
      checkColumns(conn, `${table}_dead`, DEAD_COLUMNS);
      checkColumns(conn, `${table}_leases`, LEASE_COLUMNS);
    }).immediate();
  });
}

/** Creates `throughway_checkpoints` (cursor positions by name) if missing. */
export function createCheckpointTable(db: SqliteDatabase): void {
  db.exec(`CREATE TABLE IF NOT EXISTS ${CHECKPOINT_TABLE} (
    name TEXT PRIMARY KEY,
    position,
    updated_at INTEGER NOT NULL
  )`);
}

/** Creates `throughway_cursor_failures` (rows whose message failed in cursor mode) if missing. */
export function createCursorFailuresTable(db: SqliteDatabase): void {
  db.exec(`CREATE TABLE IF NOT EXISTS ${CURSOR_FAILURES_TABLE} (
    checkpoint_name TEXT NOT NULL,
    key NOT NULL,
    row TEXT,
    last_error TEXT,
    failed_at INTEGER NOT NULL,
    PRIMARY KEY (checkpoint_name, key)
  )`);
}

/** The column names of a table, or an empty list if it does not exist. */
export function columnsOf(db: SqliteDatabase, table: string): string[] {
  quoteIdentifier(table, 'table');
  return (db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]);
}

// Adds the columns of a later version to a table that has every other column of ours (a table
// that is not ours is left as it is, for checkColumns to refuse).
function addColumns(db: SqliteDatabase, table: string, quoted: string, added: [string, string][]): void {
  const have = new Set(columnsOf(db, table));
  if (have.size === 0) return;
  for (const [column, type] of added) {
    if (!have.has(column) && have.has('attempts') && have.has('payload')) db.exec(`ALTER TABLE ${quoted} ADD COLUMN ${column} ${type}`);
  }
}

// CREATE TABLE IF NOT EXISTS keeps a table of the same name that someone else made: say so now
// rather than fail on the first claim with "no such column".
function checkColumns(db: SqliteDatabase, table: string, expected: string[]): void {
  const have = new Set(columnsOf(db, table));
  const missing = expected.filter((c) => !have.has(c));
  if (missing.length > 0) {
    throw new ThroughwayError('ERR_THROUGHWAY_SQLITE_SCHEMA', `The table ${table} exists but is not a Throughway queue table: it lacks the columns ${missing.join(', ')}`, {
      details: { table, missing },
    });
  }
}
