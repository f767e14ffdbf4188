import type { Statement } from 'better-sqlite3';
import { ThroughwayError } from '@throughway/workers';
import { withDatabase, type SqliteDatabase } from './connection.js';
import { describeValue, invalid, quoteIdentifier, tableName } from './options.js';

/** A payload with settings of its own. */
export interface EnqueueItem {
  /** Stored as is: a string as TEXT, bytes as a BLOB. */
  payload: string | Uint8Array;
  /** Not claimable before this time (ms since the epoch, or a Date). Default: now. */
  availableAt?: number | Date;
  /** JSON-serializable; spread into `message.metadata` when the row is claimed. */
  metadata?: Record<string, unknown>;
}

/** Options of {@link enqueue}. */
export interface EnqueueOptions {
  /** Default `'throughway_events'`. */
  table?: string;
}

/** What {@link enqueue} inserted: ids are consecutive, from `firstId` to `lastId`. */
export interface EnqueueResult {
  count: number;
  firstId: number | undefined;
  lastId: number | undefined;
}

// 100 rows of 4 values per statement: measured near the best of multi-row VALUES on better-sqlite3,
// far below SQLite's bound-parameter limit (32766).
const ROWS_PER_STATEMENT = 100;
const COLUMNS = 4;

const cache = new WeakMap<SqliteDatabase, Map<string, Statement>>();

function insertStatement(db: SqliteDatabase, table: string, rows: number): Statement {
  let byKey = cache.get(db);
  if (!byKey) cache.set(db, (byKey = new Map()));
  const key = `${table}\u0000${rows}`;
  let statement = byKey.get(key);
  if (!statement) {
    const values = new Array(rows).fill('(?,?,?,?)').join(',');
    statement = db.prepare(`INSERT INTO ${quoteIdentifier(table, 'enqueue.table')} (payload, metadata, available_at, created_at) VALUES ${values}`);
    byKey.set(key, statement);
  }
  return statement;
}

function badItem(index: number, item: unknown): never {
  throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `enqueue: item ${index} must be a string, a Buffer or { payload, availableAt?, metadata? }, got ${describeValue(item)}`, {
    details: { index },
  });
}

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/**
 * Inserts payloads into a queue table in one transaction, 100 rows per statement. Used by tests,
 * the demo and the benchmarks to fill a queue fast (several hundred thousand rows a second).
 * Takes a connection or a file path; the table must exist (see `migrate`).
 *
 * @example
 * enqueue(db, ['{"order":1}', '{"order":2}'])
 * enqueue(db, [{ payload: '{"order":3}', availableAt: Date.now() + 60_000, metadata: { source: 'api' } }], { table: 'orders' })
 */
export function enqueue(db: SqliteDatabase | string, payloads: readonly (string | Uint8Array | EnqueueItem)[], options: EnqueueOptions = {}): EnqueueResult {
  if (!Array.isArray(payloads)) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `enqueue expects a list of payloads, got ${describeValue(payloads)}`);
  if (options === null || typeof options !== 'object') invalid('enqueue.options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (key !== 'table') throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Unknown option \`enqueue.${key}\`; the known one is table`, { details: { path: `enqueue.${key}` } });
  }
  const table = tableName(options.table, 'enqueue.table', 'throughway_events');
  const total = payloads.length;
  if (total === 0) return { count: 0, firstId: undefined, lastId: undefined };
  const now = Date.now();
  // Every item is checked before anything is written: a bad item fails the whole call.
  const values: unknown[] = new Array(total * COLUMNS);
  for (let i = 0; i < total; i++) {
    const item = payloads[i] as unknown;
    const at = i * COLUMNS;
    values[at + 3] = now;
    if (typeof item === 'string' || isBytes(item)) {
      values[at] = item;
      values[at + 1] = null;
      values[at + 2] = now;
      continue;
    }
    if (item === null || typeof item !== 'object') badItem(i, item);
    const { payload, availableAt, metadata } = item as EnqueueItem;
    if (typeof payload !== 'string' && !isBytes(payload)) badItem(i, item);
    values[at] = payload;
    let when = now;
    if (availableAt instanceof Date) when = availableAt.getTime();
    else if (availableAt !== undefined) {
      if (typeof availableAt !== 'number' || !Number.isFinite(availableAt)) {
        throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `enqueue: item ${i}.availableAt must be a time in ms or a Date, got ${describeValue(availableAt)}`, { details: { index: i } });
      }
      when = Math.trunc(availableAt);
    }
    values[at + 2] = when;
    if (metadata === undefined || metadata === null) values[at + 1] = null;
    else if (typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `enqueue: item ${i}.metadata must be an object, got ${describeValue(metadata)}`, { details: { index: i } });
    } else values[at + 1] = JSON.stringify(metadata);
  }
  return withDatabase(db, (conn) => {
    const full = insertStatement(conn, table, ROWS_PER_STATEMENT);
    const insertAll = conn.transaction(() => {
      let at = 0;
      const chunk = new Array(ROWS_PER_STATEMENT * COLUMNS);
      for (; at + ROWS_PER_STATEMENT <= total; at += ROWS_PER_STATEMENT) {
        const from = at * COLUMNS;
        for (let k = 0; k < chunk.length; k++) chunk[k] = values[from + k];
        full.run(chunk);
      }
      let last = 0;
      if (at < total) {
        last = Number(insertStatement(conn, table, total - at).run(values.slice(at * COLUMNS)).lastInsertRowid);
      } else {
        last = Number(conn.prepare('SELECT last_insert_rowid()').pluck().get());
      }
      return last;
    });
    // IMMEDIATE: the ids of one call are consecutive because no other writer can interleave.
    const lastId = insertAll.immediate();
    return { count: total, firstId: lastId - total + 1, lastId };
  });
}
