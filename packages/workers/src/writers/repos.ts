/**
 * `sqliteRepo` and `postgresRepo`, the bulk writers' entry points. They check their connection at
 * once and load the writers' code (a dozen modules) only when a repo is built: every thread that
 * runs a handler module imports `@throughway/workers`, and most of them (every processor thread,
 * a batch worker that writes elsewhere) never write through a repo. Loading the writers there cost
 * each such thread about a fifth of its start-up.
 */
import { ThroughwayError, describeValue } from '../errors.js';
import type { PostgresConnection, SqliteConnection } from './connections.js';
import type { EntryOf, InsertAllOptions, InsertAllResult, Repo } from './types.js';

/**
 * A repo whose implementation is still loading: the import starts when the repo is built (in
 * `setup`, as a rule, so it is done before the first batch) and each call goes straight to the
 * implementation once it is there. Calls made before wait for it, in the order they were made.
 */
class LazyRepo implements Repo {
  readonly dialect: Repo['dialect'];
  #impl: Repo | undefined;
  readonly #loading: Promise<Repo>;

  constructor(dialect: Repo['dialect'], load: () => Promise<Repo>) {
    this.dialect = dialect;
    this.#loading = load().then((impl) => (this.#impl = impl));
    // Reported by the first call that needs the repo, not as an unhandled rejection.
    this.#loading.catch(() => undefined);
  }

  insertAll<E extends EntryOf<E>>(table: string, entries: readonly E[], options?: InsertAllOptions): Promise<InsertAllResult> {
    const impl = this.#impl;
    return impl ? impl.insertAll(table, entries, options) : this.#loading.then((loaded) => loaded.insertAll(table, entries, options));
  }

  transaction<T>(fn: (repo: Repo) => T | Promise<T>): Promise<T> {
    const impl = this.#impl;
    return impl ? impl.transaction(fn) : this.#loading.then((loaded) => loaded.transaction(fn));
  }

  /** Before the implementation has loaded there is nothing cached to forget. */
  clearCache(): void {
    this.#impl?.clearCache();
  }
}

function invalid(message: string, option: string): ThroughwayError {
  return new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', message, { details: { option } });
}

/**
 * A {@link Repo} over a better-sqlite3 connection. Build it once per batch worker, in `setup`,
 * with the connection that worker owns (better-sqlite3 connections cannot move between threads).
 *
 * The repo never changes the connection's pragmas. Foreign keys are enforced only when
 * `PRAGMA foreign_keys = ON` (better-sqlite3 builds SQLite with that default; set it yourself to be
 * sure), and a busy timeout (`new Database(file, { timeout })`) decides how long a write waits for
 * another process's lock. Each `insertAll` runs in `BEGIN IMMEDIATE` (or a savepoint when a
 * transaction is open), so it is all or nothing.
 *
 * Work is synchronous (better-sqlite3 is); the promise is for one `Repo` shape across databases.
 * The writer's code loads in the background when the repo is built (see {@link LazyRepo}): an
 * `insertAll` or `transaction` called before it has loaded waits for it, later ones start at once.
 *
 * @example
 * import Database from 'better-sqlite3';
 * import { definePipeline, sqliteRepo, timestamps, expectCount, type Repo } from '@throughway/workers';
 *
 * let repo: Repo;
 * export default definePipeline({
 *   setup() {
 *     const db = new Database('shop.db', { timeout: 5000 });
 *     db.pragma('journal_mode = WAL');
 *     db.pragma('foreign_keys = ON');
 *     repo = sqliteRepo(db);
 *   },
 *   handleMessage: (_processor, message) => message,
 *   async handleBatch(_batcher, messages) {
 *     const ts = timestamps();
 *     const entries = messages.map((m) => ({ ...(m.data as object), ...ts }));
 *     expectCount(await repo.insertAll('orders', entries), entries);
 *     return messages;
 *   },
 * });
 */
export function sqliteRepo(connection: SqliteConnection): Repo {
  const db = connection as { prepare?: unknown; transaction?: unknown } | null;
  if (db === null || typeof db !== 'object' || typeof db.prepare !== 'function' || typeof db.transaction !== 'function') {
    throw invalid(`sqliteRepo(db): db must be a better-sqlite3 Database, got ${describeValue(db)}`, 'db');
  }
  return new LazyRepo('sqlite', async () => (await import('./sqlite/repo.js')).openSqliteRepo(connection));
}

/**
 * A {@link Repo} over a pg `Client`, `PoolClient` or `Pool`. Build it once per batch worker, in
 * `setup`, and end the client or pool in `teardown`.
 *
 * - With a `Pool`, each `insertAll` and each `transaction` checks a client out and releases it.
 * - With a `Client`, calls run on it: await each call before starting the next (pg runs one query
 *   at a time, so two concurrent multi-statement calls would interleave), and do not run other
 *   queries on it while a `transaction`'s function is pending, they would join the transaction.
 *   Use a `Pool` for concurrent writers. An `insertAll` that needs several
 *   statements opens its own transaction, unless the client is already inside one (ours, or one
 *   you began yourself with `BEGIN`, which only pg versions with `client.getTransactionStatus()` can
 *   detect; with older ones, run such writes through `repo.transaction()` instead).
 *
 * Plain inserts of 200+ rows use `COPY FROM STDIN` (implemented over pg's protocol, no extra
 * dependency); the rest use one `INSERT ... SELECT FROM unnest(...)` per 50,000 rows, a named
 * prepared statement per key set and options. Column types come from the catalog.
 *
 * @example
 * import pg from 'pg';
 * import { definePipeline, postgresRepo, timestamps, type Repo } from '@throughway/workers';
 *
 * let pool: pg.Pool;
 * let repo: Repo;
 * export default definePipeline({
 *   setup() {
 *     pool = new pg.Pool({ host: '/var/run/postgresql', database: 'shop', max: 2 });
 *     repo = postgresRepo(pool);
 *   },
 *   handleMessage: (_processor, message) => message,
 *   async handleBatch(_batcher, messages) {
 *     const ts = timestamps();
 *     const customers = messages.map((m) => ({ id: (m.data as { customer: string }).customer, ...ts }));
 *     await repo.transaction(async (tx) => {
 *       await tx.insertAll('customers', customers, { onConflict: 'nothing' });
 *       await tx.insertAll('orders', messages.map((m) => ({ ...(m.data as object), ...ts })));
 *     });
 *     return messages;
 *   },
 *   teardown: () => pool.end(),
 * });
 */
export function postgresRepo(connection: PostgresConnection): Repo {
  const client = connection as { query?: unknown } | null;
  if (client === null || typeof client !== 'object' || typeof client.query !== 'function') {
    throw invalid(`postgresRepo(client): client must be a pg Client, PoolClient or Pool, got ${describeValue(client)}`, 'client');
  }
  return new LazyRepo('postgres', async () => (await import('./postgres/repo.js')).openPostgresRepo(connection));
}
