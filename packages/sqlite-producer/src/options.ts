import { ThroughwayError } from '@throughway/workers';
import { describeValue, invalidOption as invalid, onlyKeys, plainObject } from '@throughway/workers/internal';

/**
 * Option checking for everything this package exports. Every option is checked before a
 * connection is opened, and an error names the option's path and the value received, so that
 * a typo fails at start-up instead of turning into a silently ignored setting.
 */

/** How long to wait before a failed row is claimable again, from its delivery count (1 on the first failure). */
export type BackoffFunction = (attempts: number) => number;

/** Exponential backoff: `min(maxMs, baseMs * 2 ** (attempts - 1))`. */
export interface BackoffOptions {
  /** Delay after the first failure. Default 1000 ms. */
  baseMs?: number;
  /** Upper bound of the delay. Default 60000 ms. */
  maxMs?: number;
}

/** Options of {@link sqliteQueue}. */
export interface SqliteQueueOptions {
  /** Path of the SQLite file. Each producer opens its own connection to it. */
  database: string;
  /** Queue table (created by `migrate`). Default `'throughway_events'`. */
  table?: string;
  /** How long a claimed row stays invisible to other claims. Default 30000 ms; 1 to 2^31-1. */
  leaseMs?: number;
  /** How often to look for rows while demand is unmet. Default 100 ms; 1 to 2^31-1. */
  pollInterval?: number;
  /**
   * Attempts that end in a failure before the row is moved to the dead-letter table. A delivery
   * cut short by a crash or an expired lease does not count here (see `maxDeliveries`). Default 5;
   * 1 to 1,000,000.
   */
  maxAttempts?: number;
  /**
   * Deliveries that end with no ack at all (the process died, or the lease ran out) before the
   * row is moved to the dead-letter table, with a reason saying so: a row that kills every
   * process that touches it still ends. Killing the consumer fewer times than this never
   * dead-letters a row. Default 50; 1 to 1,000,000.
   */
  maxDeliveries?: number;
  /** Delay before a failed row is retried. Default `{ baseMs: 1000, maxMs: 60000 }`. */
  backoff?: BackoffOptions | BackoffFunction;
  /** What a successful ack does to the row. Default `'delete'`. */
  onSuccess?: 'delete' | 'mark_done';
  /** SQLite `busy_timeout`: how long a claim or ack waits for another process's write lock. Default 5000 ms; 0 to 2^31-1. */
  busyTimeout?: number;
  /**
   * Rows a claim may take beyond the demand, held leased in memory until demand arrives, so that
   * small demand increments do not each pay for a transaction. Their leases are renewed while
   * they wait. Default 0; 0 to 1,000,000.
   */
  prefetch?: number;
  /**
   * Bound of the payloads held beyond the demand (`prefetch`), in bytes (a TEXT payload counts its
   * length in characters): a claim stops prefetching before it would go past it. Default 16 MiB
   * (16777216); 0 to 2^32.
   */
  prefetchBytes?: number;
  /** Put `{ id, attempts }` (and the row's stored metadata) in `message.metadata`. Default true. */
  metadata?: boolean;
  /** Create the tables at `init` if they are missing. Default true. */
  migrate?: boolean;
  /**
   * Run claims and acks on a thread of the producer's own that holds the connection, instead of
   * on the main thread. Takes the SQLite work (~2.5 µs a row) off the main thread, which the
   * pipeline needs for everything else; costs a thread and a hop per claim. Default false.
   */
  thread?: boolean;
  /** Called when a claim fails (e.g. the database stayed locked past `busyTimeout`); the claim is retried at the next poll. */
  onError?: (error: unknown) => void;
}

/** Options of {@link sqliteCursor}. */
export interface SqliteCursorOptions {
  /** Path of the SQLite file. */
  database: string;
  /** The table to read, in `key` order. It is never written to. */
  table: string;
  /** A unique, non-null, preferably indexed column. Default `'id'`. */
  key?: string;
  /** Name of the checkpoint in `throughway_checkpoints`. Default: the table name. */
  checkpointName?: string;
  /** How often to look for new rows once the end of the table is reached. Default 1000 ms; 1 to 2^31-1. */
  pollInterval?: number;
  /**
   * Stop at the end of the table instead of polling for new rows: the cursor reports itself
   * exhausted, so `pipeline.done` settles (and `Pipeline.run` returns) once its rows are acked.
   * Default false.
   */
  untilEnd?: boolean;
  /** SQLite `busy_timeout`. Default 5000 ms; 0 to 2^31-1. */
  busyTimeout?: number;
  /** Called when a read fails; it is retried at the next poll. */
  onError?: (error: unknown) => void;
}

export interface ResolvedQueueOptions {
  database: string;
  table: string;
  leaseMs: number;
  pollInterval: number;
  maxAttempts: number;
  maxDeliveries: number;
  backoff: BackoffFunction;
  onSuccess: 'delete' | 'mark_done';
  busyTimeout: number;
  prefetch: number;
  prefetchBytes: number;
  metadata: boolean;
  migrate: boolean;
  thread: boolean;
  onError: (error: unknown) => void;
}

export interface ResolvedCursorOptions {
  database: string;
  table: string;
  key: string;
  checkpointName: string;
  pollInterval: number;
  untilEnd: boolean;
  busyTimeout: number;
  onError: (error: unknown) => void;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export { describeValue, invalid };

/**
 * The ranges of this package's numeric options. Timers take at most 2^31-1 ms (Node turns a
 * longer delay into 1 ms) and SQLite's busy_timeout is a 32-bit int; counts are bounded where a
 * larger value can only be a mistake.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
export const MAX_COUNT = 1_000_000;
export const MAX_PREFETCH_BYTES = 2 ** 32;
export const DEFAULT_PREFETCH_BYTES = 16 * 1024 * 1024;

/** An integer from `min` to `max`, or `fallback` when absent; the error names the range. */
function integer(path: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(path, `an integer from ${min} to ${max === MAX_TIMER_MS ? '2^31-1 (2147483647)' : max}`, value);
  }
  return value;
}

function boolean(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(path, 'a boolean', value);
  return value;
}

function databasePath(path: string, value: unknown): string {
  // A path, not a connection: each producer opens its own (connections cannot be shared
  // between processes, and ':memory:' would give every producer a different empty database).
  if (typeof value !== 'string' || value === '' || value === ':memory:' || value.startsWith('file:')) {
    invalid(path, 'the path of a SQLite file', value);
  }
  return value;
}

/**
 * Checks a table or column name against `/^[A-Za-z_][A-Za-z0-9_]*$/` and returns it quoted.
 * No SQL is ever built from a name that did not pass here.
 *
 * @example
 * quoteIdentifier('throughway_events', 'table') // '"throughway_events"'
 */
export function quoteIdentifier(name: unknown, path: string): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) invalid(path, 'an identifier matching /^[A-Za-z_][A-Za-z0-9_]*$/', name);
  return `"${name}"`;
}

/**
 * Checks a table name this package creates: an identifier (see {@link quoteIdentifier}) that
 * does not start with `sqlite_`, which SQLite reserves for itself.
 */
export function ownTableName(value: unknown, path: string, fallback: string): string {
  const name = tableName(value, path, fallback);
  if (name.toLowerCase().startsWith('sqlite_')) invalid(path, 'a table name not starting with `sqlite_` (reserved by SQLite)', value);
  return name;
}

/** Checks a table name (see {@link quoteIdentifier}) and returns it unquoted. */
export function tableName(value: unknown, path: string, fallback?: string): string {
  const name = value === undefined ? fallback : value;
  quoteIdentifier(name, path);
  return name as string;
}

/** The default `onError`: a process warning, so a locked database is visible but not fatal. */
function warn(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(`@throughway/sqlite-producer: ${message}; retrying at the next poll`, { code: 'THROUGHWAY_SQLITE_PRODUCER' });
}

function backoffFrom(path: string, value: unknown): BackoffFunction {
  if (value === undefined) return exponentialBackoff(1000, 60_000);
  if (typeof value === 'function') {
    const fn = value as BackoffFunction;
    // A backoff that returns junk must not store NaN in available_at: it would never be claimable
    // (and one of years is a mistake: capped like the option's range).
    return (attempts) => {
      const ms = fn(attempts);
      return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_TIMER_MS) : 0;
    };
  }
  const b = plainObject(path, value);
  // A Date or a class instance is an object too, and has none of the keys: not a silent default.
  const proto = Object.getPrototypeOf(b);
  if (proto !== Object.prototype && proto !== null) invalid(path, 'a plain object { baseMs?, maxMs? } or a function', value);
  onlyKeys(path, b, ['baseMs', 'maxMs']);
  const baseMs = integer(`${path}.baseMs`, b.baseMs, 1000, 0, MAX_TIMER_MS);
  const maxMs = integer(`${path}.maxMs`, b.maxMs, Math.max(60_000, baseMs), 0, MAX_TIMER_MS);
  if (maxMs < baseMs) invalid(`${path}.maxMs`, `an integer from baseMs (${baseMs}) and up`, b.maxMs);
  return exponentialBackoff(baseMs, maxMs);
}

/**
 * `min(maxMs, baseMs * 2 ** (attempts - 1))`.
 *
 * @example
 * exponentialBackoff(1000, 60000)(3) // 4000
 */
export function exponentialBackoff(baseMs: number, maxMs: number): BackoffFunction {
  return (attempts) => Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
}

function onErrorFrom(path: string, value: unknown): (error: unknown) => void {
  if (value === undefined) return warn;
  if (typeof value !== 'function') invalid(path, 'a function', value);
  return value as (error: unknown) => void;
}

/** Checks the options of `sqliteQueue` and fills in the defaults. */
export function resolveQueueOptions(input: unknown): ResolvedQueueOptions {
  const o = plainObject('sqliteQueue', input);
  onlyKeys('sqliteQueue', o, ['database', 'table', 'leaseMs', 'pollInterval', 'maxAttempts', 'maxDeliveries', 'backoff', 'onSuccess', 'busyTimeout', 'prefetch', 'prefetchBytes', 'metadata', 'migrate', 'thread', 'onError']);
  const onSuccess = o.onSuccess ?? 'delete';
  if (onSuccess !== 'delete' && onSuccess !== 'mark_done') invalid('sqliteQueue.onSuccess', "'delete' or 'mark_done'", o.onSuccess);
  return {
    database: databasePath('sqliteQueue.database', o.database),
    table: ownTableName(o.table, 'sqliteQueue.table', 'throughway_events'),
    leaseMs: integer('sqliteQueue.leaseMs', o.leaseMs, 30_000, 1, MAX_TIMER_MS),
    pollInterval: integer('sqliteQueue.pollInterval', o.pollInterval, 100, 1, MAX_TIMER_MS),
    maxAttempts: integer('sqliteQueue.maxAttempts', o.maxAttempts, 5, 1, MAX_COUNT),
    maxDeliveries: integer('sqliteQueue.maxDeliveries', o.maxDeliveries, 50, 1, MAX_COUNT),
    backoff: backoffFrom('sqliteQueue.backoff', o.backoff),
    onSuccess,
    busyTimeout: integer('sqliteQueue.busyTimeout', o.busyTimeout, 5000, 0, MAX_TIMER_MS),
    prefetch: integer('sqliteQueue.prefetch', o.prefetch, 0, 0, MAX_COUNT),
    prefetchBytes: integer('sqliteQueue.prefetchBytes', o.prefetchBytes, DEFAULT_PREFETCH_BYTES, 0, MAX_PREFETCH_BYTES),
    metadata: boolean('sqliteQueue.metadata', o.metadata, true),
    migrate: boolean('sqliteQueue.migrate', o.migrate, true),
    thread: boolean('sqliteQueue.thread', o.thread, false),
    onError: onErrorFrom('sqliteQueue.onError', o.onError),
  };
}

/** Checks the options of `sqliteCursor` and fills in the defaults. */
export function resolveCursorOptions(input: unknown): ResolvedCursorOptions {
  const o = plainObject('sqliteCursor', input);
  onlyKeys('sqliteCursor', o, ['database', 'table', 'key', 'checkpointName', 'pollInterval', 'untilEnd', 'busyTimeout', 'onError']);
  if (o.untilEnd !== undefined && typeof o.untilEnd !== 'boolean') invalid('sqliteCursor.untilEnd', 'a boolean', o.untilEnd);
  const table = tableName(o.table, 'sqliteCursor.table');
  const checkpointName = o.checkpointName ?? table;
  if (typeof checkpointName !== 'string' || checkpointName === '') invalid('sqliteCursor.checkpointName', 'a non-empty string', o.checkpointName);
  return {
    database: databasePath('sqliteCursor.database', o.database),
    table,
    key: tableName(o.key, 'sqliteCursor.key', 'id'),
    checkpointName,
    pollInterval: integer('sqliteCursor.pollInterval', o.pollInterval, 1000, 1, MAX_TIMER_MS),
    untilEnd: o.untilEnd === true,
    busyTimeout: integer('sqliteCursor.busyTimeout', o.busyTimeout, 5000, 0, MAX_TIMER_MS),
    onError: onErrorFrom('sqliteCursor.onError', o.onError),
  };
}
