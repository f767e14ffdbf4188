/**
 * `sqliteRepo`: bulk inserts through better-sqlite3 with multi-row VALUES statements, the fastest
 * way to feed SQLite from JavaScript (ARCHITECTURE.md: ~1.1M rows/s at 50–100 rows a statement).
 */
import type Database from 'better-sqlite3';
import type { SqliteConnection } from '../connections.js';
import { ThroughwayError } from '../../errors.js';
import { checkInsertArguments, normalizeOptions } from '../options.js';
import { planInsert, type ShapePlan, type TableMeta } from '../plan.js';
import { columnList, conflictClause, returningClause } from '../sql.js';
import type { Entry, EntryOf, InsertAllOptions, InsertAllResult, Repo } from '../types.js';
import { locateValueError, sqliteValue } from '../values.js';
import { loadSqliteTable, sqliteMaxVariables } from './metadata.js';

/**
 * Rows per statement on the fast path: ARCHITECTURE.md measured 50–100 rows a statement as the
 * fastest, and 100 divides the usual batch sizes (100, 500, 1000) into full statements. Remainders
 * use power-of-two sizes, so at most eight statement texts exist per key set and options.
 */
const PREFERRED_ROWS = 100;

interface Prepared {
  statement: Database.Statement;
  /** Reused bind array: filling it in place avoids an allocation per statement. */
  params: unknown[];
}

interface TableCache {
  meta: TableMeta;
  /** plan key → rows per statement → statement. */
  statements: Map<string, Map<number, Prepared>>;
}

let savepointSeq = 0;

class SqliteRepo implements Repo {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #tables = new Map<string, TableCache>();
  readonly #maxVariables: number;
  // better-sqlite3 opens a transaction, or a savepoint when one is already open (inside
  // `transaction()`), and rolls back when the function throws: one insertAll is all or nothing.
  readonly #atomic: Database.Transaction<(work: () => InsertAllResult) => InsertAllResult>;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#maxVariables = sqliteMaxVariables(db);
    this.#atomic = db.transaction((work: () => InsertAllResult) => work());
  }

  async insertAll<E extends EntryOf<E>>(table: string, input: readonly E[], options?: InsertAllOptions): Promise<InsertAllResult> {
    const entries = input as unknown as readonly Entry[];
    checkInsertArguments(table, entries);
    const normalized = normalizeOptions(table, options);
    if (entries.length === 0) return normalized.returning ? { count: 0, rows: [] } : { count: 0 };
    const cache = this.#table(table);
    const plans = planInsert(cache.meta, entries, normalized);
    // IMMEDIATE takes the write lock up front, so a concurrent writer makes us wait (busy_timeout)
    // instead of failing with SQLITE_BUSY when a read lock would have to be upgraded.
    return this.#atomic.immediate(() => {
      const result: InsertAllResult = normalized.returning ? { count: 0, rows: [] } : { count: 0 };
      for (const plan of plans) this.#writeShape(cache, plan, result);
      return result;
    });
  }

  async transaction<T>(fn: (repo: Repo) => T | Promise<T>): Promise<T> {
    const db = this.#db;
    // better-sqlite3's own db.transaction() cannot await, so an async fn gets manual BEGIN/COMMIT.
    const savepoint = db.inTransaction ? `throughway_sp_${++savepointSeq}` : null;
    db.exec(savepoint ? `SAVEPOINT ${savepoint}` : 'BEGIN IMMEDIATE');
    try {
      const value = await fn(this);
      db.exec(savepoint ? `RELEASE ${savepoint}` : 'COMMIT');
      return value;
    } catch (error) {
      // A failed COMMIT (a deferred foreign key, SQLITE_BUSY) leaves the transaction open: close it.
      if (db.inTransaction) db.exec(savepoint ? `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}` : 'ROLLBACK');
      throw error;
    }
  }

  clearCache(): void {
    this.#tables.clear();
  }

  #table(table: string): TableCache {
    let cache = this.#tables.get(table);
    if (cache === undefined) {
      cache = { meta: loadSqliteTable(this.#db, table), statements: new Map() };
      this.#tables.set(table, cache);
    }
    return cache;
  }

  #prepared(cache: TableCache, plan: ShapePlan, sizes: Map<number, Prepared>, rows: number): Prepared {
    let prepared = sizes.get(rows);
    if (prepared === undefined) {
      const row = `(${plan.columns.map(() => '?').join(', ')})`;
      const sql =
        `INSERT INTO ${cache.meta.sql} (${columnList(plan.columns)}) VALUES ` +
        new Array(rows).fill(row).join(', ') +
        conflictClause(plan) +
        returningClause(plan);
      prepared = { statement: this.#db.prepare(sql), params: new Array(rows * plan.columns.length) };
      sizes.set(rows, prepared);
    }
    return prepared;
  }

  #writeShape(cache: TableCache, plan: ShapePlan, result: InsertAllResult): void {
    const { columns, entries, reader, allowNonFinite } = plan;
    const width = columns.length;
    const total = entries.length;
    const maxRows = Math.max(1, Math.min(PREFERRED_ROWS, Math.floor(this.#maxVariables / width)));
    let sizes = cache.statements.get(plan.key);
    if (sizes === undefined) cache.statements.set(plan.key, (sizes = new Map()));
    let start = 0;
    while (start < total) {
      const remaining = total - start;
      // Full statements first, then the remainder in power-of-two pieces (bounded statement cache).
      const rows = remaining >= maxRows ? maxRows : 2 ** Math.floor(Math.log2(remaining));
      const { statement, params } = this.#prepared(cache, plan, sizes, rows);
      reader.read(entries, start, start + rows, params);
      try {
        // Rows of a batch often share one object (the Date of `timestamps()`): convert it once.
        // Safe within this synchronous loop, where nothing can mutate it in between.
        let lastObject: unknown = undefined;
        let lastValue: unknown = undefined;
        for (let k = 0; k < params.length; k++) {
          const value = params[k];
          if (typeof value === 'string') continue;
          // A finite number: x - x is 0 (NaN and ±Infinity give NaN).
          if (typeof value === 'number' && value - value === 0) continue;
          params[k] = value === lastObject ? lastValue : (lastValue = sqliteValue((lastObject = value), allowNonFinite));
        }
      } catch (error) {
        throw locateValueError(error, cache.meta.display, entries.slice(start, start + rows), columns, (value) => sqliteValue(value, allowNonFinite));
      }
      if (result.rows) {
        const returned = statement.all(params) as Record<string, unknown>[];
        for (const row of returned) result.rows.push(row);
        result.count += returned.length;
      } else {
        result.count += statement.run(params).changes;
      }
      start += rows;
    }
  }
}

/** The repo itself, for `sqliteRepo` (repos.ts), which checks the connection and imports this module when a repo is built. */
export function openSqliteRepo(connection: SqliteConnection): Repo {
  return new SqliteRepo(connection as Database.Database);
}
