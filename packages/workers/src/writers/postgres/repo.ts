/**
 * `postgresRepo`: bulk inserts through pg with `INSERT ... SELECT FROM unnest($1::type[], ...)`
 * (one parameter per column whatever the row count, so the 65535-parameter limit never binds) or,
 * for large plain inserts, `COPY ... FROM STDIN` (faster still, but it has no ON CONFLICT and no
 * RETURNING).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { PostgresConnection } from '../connections.js';
import { ThroughwayError } from '../../errors.js';
import { checkInsertArguments, normalizeOptions } from '../options.js';
import { planInsert, type ShapePlan } from '../plan.js';
import { columnList, conflictClause, returningClause } from '../sql.js';
import type { Entry, EntryOf, InsertAllOptions, InsertAllResult, Repo } from '../types.js';
import { readAll } from '../rows.js';
import { locateValueError } from '../values.js';
import { copyFromStdin } from './copy.js';
import { columnParameter, copyChunks, pgText, type PgTarget } from './encode.js';
import { loadPostgresTable, type PgTable } from './metadata.js';

/**
 * Plain inserts of at least this many rows (of one key set) go through COPY. Measured on the unix
 * socket (bench/src/scenarios/insert-all.ts and ad-hoc runs): raw COPY beats raw unnest from about
 * 50 rows a batch, unnest wins below ~20 (one round trip against COPY's two). Over TCP each round trip
 * costs more, so the switch is set higher than the socket's crossover.
 */
const COPY_MIN_ROWS = 200;
/** Rows per unnest statement: bounds the size of one parameter string, not a database limit. */
const UNNEST_MAX_ROWS = 50_000;
/**
 * An unnest statement of at least this many rows passes a column that holds one value in every row
 * (the `...timestamps()` spread into each entry, a flag, a batch id) as one scalar parameter
 * instead of an array of copies: nothing to build per row here, no array for the server to parse
 * and unnest. Below it the all-array statement is kept, so that few-row calls, whose columns are
 * often equal by chance, do not each make a statement shape of their own.
 */
const CONSTANT_MIN_ROWS = 16;
/**
 * Statement shapes kept per table (column set and options × which columns are constant); past it,
 * new shapes use the all-array statement. Each shape is a prepared statement on every connection.
 */
const MAX_SHAPES_PER_TABLE = 64;

type Target = pg.Pool | pg.ClientBase;

interface Unnest {
  text: string;
  /** Named prepared statement: parsed once per connection. */
  name: string;
  /** Columns passed as one scalar (see CONSTANT_MIN_ROWS), by position; null when none is. */
  constant: boolean[] | null;
}

/**
 * Which columns of rows `[start, end)` hold one value in every row (`===`: the same Date object,
 * as `timestamps()` gives every entry), or null when none does, when all do (unnest needs an array
 * to count the rows) or when the rows are too few to be worth a statement shape of their own.
 */
function constantColumns(values: readonly unknown[], width: number, start: number, end: number): boolean[] | null {
  if (end - start < CONSTANT_MIN_ROWS) return null;
  let found = 0;
  const constant = new Array<boolean>(width);
  for (let c = 0; c < width; c++) {
    const first = values[start * width + c];
    let same = true;
    for (let k = (start + 1) * width + c, last = end * width; k < last; k += width) {
      if (values[k] !== first) {
        same = false;
        break;
      }
    }
    constant[c] = same;
    if (same) found++;
  }
  return found === 0 || found === width ? null : constant;
}

/** One statement of an insertAll, with its data already encoded. */
type Step = { copy: string; chunks: Buffer[] } | { name: string; text: string; values: (string | null)[] };

interface TableCache {
  meta: PgTable;
  statements: Map<string, Unnest>;
}

/** Shared by a repo and the repos its transactions hand out: same database, same catalog. */
interface Shared {
  tables: Map<string, Promise<TableCache>>;
}

let savepointSeq = 0;

function isPool(target: Target): target is pg.Pool {
  // Duck-typed: the caller's pg may be another copy of the module than ours.
  return 'totalCount' in target && 'idleCount' in target && typeof (target as pg.Pool).connect === 'function';
}

/**
 * True when the client is inside a transaction we did not open. Only pg versions with
 * `getTransactionStatus()` (added in 2026, pg 8.2x; not the native client) can tell; older ones say no.
 */
function clientInTransaction(client: pg.ClientBase): boolean {
  const status = typeof client.getTransactionStatus === 'function' ? client.getTransactionStatus() : null;
  return status === 'T' || status === 'E';
}

class PostgresRepo implements Repo {
  readonly dialect = 'postgres' as const;
  readonly #target: Target;
  readonly #shared: Shared;
  /** Set on repos handed out by `transaction()`: their client is inside our transaction. */
  readonly #inTransaction: boolean;

  constructor(target: Target, shared: Shared, inTransaction: boolean) {
    this.#target = target;
    this.#shared = shared;
    this.#inTransaction = inTransaction;
  }

  async insertAll<E extends EntryOf<E>>(table: string, input: readonly E[], options?: InsertAllOptions): Promise<InsertAllResult> {
    const entries = input as unknown as readonly Entry[];
    checkInsertArguments(table, entries);
    const normalized = normalizeOptions(table, options);
    if (entries.length === 0) return normalized.returning ? { count: 0, rows: [] } : { count: 0 };
    return this.#withClient(async (client) => {
      const cache = await this.#table(client, table);
      const plans = planInsert(cache.meta, entries, normalized);
      // Every value is encoded before the first statement runs: a value error must not leave part
      // of the call written inside a transaction the caller goes on to commit.
      const steps = this.#steps(cache, plans);
      // One statement is atomic by itself. Several need a transaction, unless one is already open
      // (ours or the caller's): there, a failed statement aborts it and nothing can be committed.
      const own = steps.length > 1 && !this.#inTransaction && !clientInTransaction(client);
      const result: InsertAllResult = normalized.returning ? { count: 0, rows: [] } : { count: 0 };
      if (own) await client.query('BEGIN');
      try {
        for (const step of steps) await this.#run(client, step, result);
        if (own) await client.query('COMMIT');
      } catch (error) {
        if (own) await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      return result;
    });
  }

  async transaction<T>(fn: (repo: Repo) => T | Promise<T>): Promise<T> {
    return this.#withClient(async (client) => {
      const nested = this.#inTransaction || clientInTransaction(client);
      const savepoint = nested ? `throughway_sp_${++savepointSeq}` : null;
      await client.query(savepoint ? `SAVEPOINT ${savepoint}` : 'BEGIN');
      try {
        const value = await fn(new PostgresRepo(client, this.#shared, true));
        await client.query(savepoint ? `RELEASE SAVEPOINT ${savepoint}` : 'COMMIT');
        return value;
      } catch (error) {
        await client.query(savepoint ? `ROLLBACK TO SAVEPOINT ${savepoint}` : 'ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  clearCache(): void {
    this.#shared.tables.clear();
  }

  /** Runs `work` on the repo's client, or on a client checked out of the pool for its duration. */
  async #withClient<T>(work: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    if (!isPool(this.#target)) return work(this.#target);
    const client = await this.#target.connect();
    let broken: Error | undefined;
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      return await work(client);
    } finally {
      client.off('error', onError);
      // A client whose connection failed must not go back to the pool.
      client.release(broken);
    }
  }

  #table(client: pg.ClientBase, table: string): Promise<TableCache> {
    let cache = this.#shared.tables.get(table);
    if (cache === undefined) {
      cache = loadPostgresTable(client, table).then((meta) => ({ meta, statements: new Map() }));
      this.#shared.tables.set(table, cache);
      // Do not cache a failure (the table may be created later).
      cache.catch(() => this.#shared.tables.delete(table));
    }
    return cache;
  }

  /** Statements to run, in order, values encoded: COPY for big plain groups, unnest chunks for the rest. */
  #steps(cache: TableCache, plans: ShapePlan[]): Step[] {
    const steps: Step[] = [];
    for (const plan of plans) {
      const n = plan.entries.length;
      const width = plan.columns.length;
      const targets: PgTarget[] = plan.columns.map((c) => {
        const { kind, family } = cache.meta.columns.get(c)!;
        return { kind, family, allowNonFinite: plan.allowNonFinite };
      });
      const values = readAll(plan.reader, width, plan.entries);
      try {
        if (plan.update === null && plan.returning === null && n >= COPY_MIN_ROWS) {
          steps.push({
            copy: `COPY ${cache.meta.sql} (${columnList(plan.columns)}) FROM STDIN`,
            chunks: copyChunks(values, width, 0, n, targets),
          });
          continue;
        }
        for (let start = 0; start < n; start += UNNEST_MAX_ROWS) {
          const end = Math.min(n, start + UNNEST_MAX_ROWS);
          const constant = constantColumns(values, width, start, end);
          const statement = this.#unnestStatement(cache, plan, constant);
          const parameters = targets.map((target, c) => {
            if (!statement.constant?.[c]) return columnParameter(values, width, c, start, end, target);
            const value = values[start * width + c];
            return value === null ? null : pgText(value, target);
          });
          steps.push({ name: statement.name, text: statement.text, values: parameters });
        }
      } catch (error) {
        throw locateValueError(error, cache.meta.display, plan.entries, plan.columns, (value, column) =>
          value === null ? null : pgText(value, targets[plan.columns.indexOf(column)]!),
        );
      }
    }
    return steps;
  }

  async #run(client: pg.ClientBase, step: Step, result: InsertAllResult): Promise<void> {
    if ('copy' in step) {
      result.count += await copyFromStdin(client, step.copy, step.chunks);
      return;
    }
    const res = await client.query(step);
    if (result.rows) {
      for (const row of res.rows) result.rows.push(row);
      result.count += res.rows.length;
    } else {
      result.count += res.rowCount ?? 0;
    }
  }

  /**
   * The statement for a plan, with the columns `constant` marks passed as scalars (`$n::type`, one
   * value for every row) and the others unnested from arrays. Parameters keep the column order.
   */
  #unnestStatement(cache: TableCache, plan: ShapePlan, constant: boolean[] | null): Unnest {
    let key = constant === null ? plan.key : `${plan.key}|${constant.map((c) => (c ? 1 : 0)).join('')}`;
    let statement = cache.statements.get(key);
    if (statement === undefined && constant !== null && cache.statements.size >= MAX_SHAPES_PER_TABLE) {
      constant = null;
      key = plan.key;
      statement = cache.statements.get(key);
    }
    if (statement === undefined) {
      const params: string[] = [];
      const aliases: string[] = [];
      const select: string[] = [];
      plan.columns.forEach((name, i) => {
        const column = cache.meta.columns.get(name)!;
        // Array columns (and types without an array type) travel as text and are cast per row.
        const cast = column.paramType === column.type ? '' : `::${column.type}`;
        if (constant?.[i]) {
          select.push(`$${i + 1}::${column.paramType}${cast}`);
          return;
        }
        params.push(`$${i + 1}::${column.paramType}[]`);
        aliases.push(`c${i}`);
        select.push(`u.c${i}${cast}`);
      });
      const text =
        `INSERT INTO ${cache.meta.sql} (${columnList(plan.columns)}) ` +
        `SELECT ${select.join(', ')} FROM unnest(${params.join(', ')}) AS u(${aliases.join(', ')})` +
        conflictClause(plan) +
        returningClause(plan);
      const name = 'throughway_' + createHash('sha1').update(text).digest('hex').slice(0, 24);
      statement = { text, name, constant };
      cache.statements.set(key, statement);
    }
    return statement;
  }
}

/** The repo itself, for `postgresRepo` (repos.ts), which checks the connection and imports this module when a repo is built. */
export function openPostgresRepo(connection: PostgresConnection): Repo {
  return new PostgresRepo(connection as pg.Client | pg.PoolClient | pg.Pool, { tables: new Map() }, false);
}

