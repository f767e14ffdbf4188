import type pg from 'pg';
import { describeValue, integerOption as integer, invalidOption as invalid, onlyKeys, plainObject } from '@throughway/workers/internal';

/**
 * Option checking for everything this package exports: every option is checked before a
 * connection is opened, and an error (`ERR_THROUGHWAY_INVALID_OPTION`) names the option's path,
 * its allowed range and the value received.
 */

/** How long to wait before a failed row is claimable again, from its failure count (1 on the first). */
export type BackoffFunction = (attempts: number) => number;

/** Exponential backoff: `min(maxMs, baseMs * 2 ** (attempts - 1))`. */
export interface BackoffOptions {
  /** Delay after the first failure. Default 1000 ms. */
  baseMs?: number;
  /** Upper bound of the delay. Default 60000 ms. */
  maxMs?: number;
}

/** Where the producer connects: a `pg.Pool` of yours, or a connection string (it then owns a pool). */
export type Connection = pg.Pool | string;

/** Options of {@link postgresQueue}. */
export interface PostgresQueueOptions {
  /** A `pg.Pool`, or a connection string from which the producer builds (and later ends) its own pool. */
  connection: Connection;
  /** Queue table (created by `migrate`), at most 40 characters. Default `'throughway_events'`. */
  table?: string;
  /** How long a claimed row stays invisible to other claims (its lease). 100 ms to 24 h; default 30000 ms. */
  leaseMs?: number;
  /** How often to look for rows while demand is unmet and no notification came. 1 ms to 1 h; default 1000 ms. */
  pollInterval?: number;
  /** Failed deliveries before a row is moved to the dead-letter table. 1 to 1000; default 5. */
  maxAttempts?: number;
  /**
   * Deliveries that ended with no ack at all (the process died, the lease ran out) before a row is
   * moved to the dead-letter table. Counted apart from failures, so crash loops never dead-letter a
   * good row, and a row that kills every process still ends. 1 to 1000; default 10.
   */
  maxDeliveries?: number;
  /** Delay before a failed row is retried. Default `{ baseMs: 1000, maxMs: 60000 }`. */
  backoff?: BackoffOptions | BackoffFunction;
  /** What a successful ack does to the row. Default `'delete'`. */
  onSuccess?: 'delete' | 'mark_done';
  /** Rows a claim may take beyond the demand, held leased until demand arrives. 0 to 100000; default 0. */
  prefetch?: number;
  /** Put `{ id, attempts, deliveries, lease }` (and the row's stored metadata) in `message.metadata`. Default true; exactly-once needs it. */
  metadata?: boolean;
  /** Create the tables at `init` if they are missing. Default true. */
  migrate?: boolean;
  /** Wake up on `NOTIFY` when rows are enqueued (a dedicated connection runs `LISTEN`). Default true. */
  listen?: boolean;
  /** `application_name` of the connections the producer opens itself (connection string only). Default `'throughway'`. */
  applicationName?: string;
  /** Upper bound of the reconnect backoff after a lost connection. 10 ms to 10 min; default 5000 ms. */
  maxReconnectDelay?: number;
  /**
   * Run `VACUUM (SKIP_LOCKED)` on the queue table after every this many rows this producer acked,
   * retried or dead-lettered, instead of waiting for autovacuum (see the README's health notes).
   * 0 turns it off. 0 to 10,000,000; default 50,000.
   */
  vacuumEvery?: number;
  /**
   * Wait for the WAL flush at the commit of the producer's own claims, acks and releases. Default
   * false: they commit with `synchronous_commit = off`, set for their own transaction only (the
   * connection's setting is left alone). A Postgres crash may then lose their last ~0.6 s; a lost
   * lease or ack only hands a row out again (at-least-once), and nothing else is lost (see the
   * README). `ackInTransaction` commits in your transaction, with your setting.
   */
  synchronousCommit?: boolean;
  /** Called once per failure episode (a lost connection, a failed claim or ack), not once per row. Default: a process warning. */
  onError?: (error: unknown) => void;
}

export interface ResolvedQueueOptions {
  connection: Connection;
  table: string;
  leaseMs: number;
  pollInterval: number;
  maxAttempts: number;
  maxDeliveries: number;
  backoff: BackoffFunction;
  onSuccess: 'delete' | 'mark_done';
  prefetch: number;
  metadata: boolean;
  migrate: boolean;
  listen: boolean;
  applicationName: string;
  maxReconnectDelay: number;
  vacuumEvery: number;
  synchronousCommit: boolean;
  onError: (error: unknown) => void;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Room for the suffixes of the tables, index, function and channel made from a table name (63 bytes in all). */
export const MAX_TABLE_LENGTH = 40;

export { describeValue, invalid };

/** An integer in `[min, max]`, or `fallback` when absent. */
export function ranged(path: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) invalid(path, `an integer from ${min} to ${max}`, value);
  return value;
}

export function boolean(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(path, 'a boolean', value);
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
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || name.length > 63) invalid(path, 'an identifier matching /^[A-Za-z_][A-Za-z0-9_]*$/ of at most 63 characters', name);
  return `"${name}"`;
}

/** Checks a queue table name (see {@link quoteIdentifier}, at most 40 characters) and returns it unquoted. */
export function tableName(value: unknown, path: string, fallback?: string): string {
  const name = value === undefined ? fallback : value;
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || name.length > MAX_TABLE_LENGTH) {
    invalid(path, `an identifier matching /^[A-Za-z_][A-Za-z0-9_]*$/ of at most ${MAX_TABLE_LENGTH} characters`, name);
  }
  return name;
}

export function connectionFrom(path: string, value: unknown): Connection {
  if (typeof value === 'string' && value !== '') return value;
  if (value !== null && typeof value === 'object' && typeof (value as pg.Pool).connect === 'function' && typeof (value as pg.Pool).query === 'function' && 'totalCount' in value) {
    return value as pg.Pool;
  }
  return invalid(path, 'a pg.Pool or a connection string', value);
}

function warn(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(`@throughway/postgres-producer: ${message}`, { code: 'THROUGHWAY_POSTGRES_PRODUCER' });
}

export function onErrorFrom(path: string, value: unknown): (error: unknown) => void {
  if (value === undefined) return warn;
  if (typeof value !== 'function') invalid(path, 'a function', value);
  return value as (error: unknown) => void;
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

const DAY = 86_400_000;

function backoffFrom(path: string, value: unknown): BackoffFunction {
  if (value === undefined) return exponentialBackoff(1000, 60_000);
  if (typeof value === 'function') {
    const fn = value as BackoffFunction;
    // A backoff that returns junk must not store NaN in available_at: the row would never come back.
    return (attempts) => {
      const ms = fn(attempts);
      return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.min(Math.trunc(ms), 30 * DAY) : 0;
    };
  }
  const b = plainObject(path, value);
  onlyKeys(path, b, ['baseMs', 'maxMs']);
  const baseMs = ranged(`${path}.baseMs`, b.baseMs, 1000, 0, DAY);
  const maxMs = ranged(`${path}.maxMs`, b.maxMs, Math.max(60_000, baseMs), 0, 30 * DAY);
  if (maxMs < baseMs) invalid(`${path}.maxMs`, `an integer from baseMs (${baseMs}) to ${30 * DAY}`, b.maxMs);
  return exponentialBackoff(baseMs, maxMs);
}

const QUEUE_KEYS = ['connection', 'table', 'leaseMs', 'pollInterval', 'maxAttempts', 'maxDeliveries', 'backoff', 'onSuccess', 'prefetch', 'metadata', 'migrate', 'listen', 'applicationName', 'maxReconnectDelay', 'vacuumEvery', 'synchronousCommit', 'onError'];

/** Checks the options of `postgresQueue` and fills in the defaults. */
export function resolveQueueOptions(input: unknown): ResolvedQueueOptions {
  const o = plainObject('postgresQueue', input);
  onlyKeys('postgresQueue', o, QUEUE_KEYS);
  const onSuccess = o.onSuccess ?? 'delete';
  if (onSuccess !== 'delete' && onSuccess !== 'mark_done') invalid('postgresQueue.onSuccess', "'delete' or 'mark_done'", o.onSuccess);
  const applicationName = o.applicationName ?? 'throughway';
  if (typeof applicationName !== 'string' || applicationName.length === 0 || applicationName.length > 63) invalid('postgresQueue.applicationName', 'a string of 1 to 63 characters', o.applicationName);
  return {
    connection: connectionFrom('postgresQueue.connection', o.connection),
    table: tableName(o.table, 'postgresQueue.table', 'throughway_events'),
    leaseMs: ranged('postgresQueue.leaseMs', o.leaseMs, 30_000, 100, DAY),
    pollInterval: ranged('postgresQueue.pollInterval', o.pollInterval, 1000, 1, 3_600_000),
    maxAttempts: ranged('postgresQueue.maxAttempts', o.maxAttempts, 5, 1, 1000),
    maxDeliveries: ranged('postgresQueue.maxDeliveries', o.maxDeliveries, 10, 1, 1000),
    backoff: backoffFrom('postgresQueue.backoff', o.backoff),
    onSuccess,
    prefetch: ranged('postgresQueue.prefetch', o.prefetch, 0, 0, 100_000),
    metadata: boolean('postgresQueue.metadata', o.metadata, true),
    migrate: boolean('postgresQueue.migrate', o.migrate, true),
    listen: boolean('postgresQueue.listen', o.listen, true),
    applicationName,
    maxReconnectDelay: ranged('postgresQueue.maxReconnectDelay', o.maxReconnectDelay, 5000, 10, 600_000),
    vacuumEvery: ranged('postgresQueue.vacuumEvery', o.vacuumEvery, 50_000, 0, 10_000_000),
    synchronousCommit: boolean('postgresQueue.synchronousCommit', o.synchronousCommit, false),
    onError: onErrorFrom('postgresQueue.onError', o.onError),
  };
}

export { integer };
