/**
 * What the bulk writers need of a driver's connection, declared here rather than imported from
 * `better-sqlite3` / `pg` so that this package's type declarations compile for a user who has
 * installed only one of those drivers (both are optional peer dependencies). A better-sqlite3
 * `Database` and a pg `Client`, `PoolClient` or `Pool` each fit their shape.
 */

/**
 * A better-sqlite3 `Database` (`new Database(file)`), as `sqliteRepo` takes it.
 *
 * @example
 * import Database from 'better-sqlite3';
 * const db: SqliteConnection = new Database('shop.db');
 */
export interface SqliteConnection {
  prepare(source: string): unknown;
  // `any` parameters: better-sqlite3's own constraint on transaction functions.
  transaction(fn: (...args: any[]) => unknown): unknown;
  exec(source: string): unknown;
  readonly inTransaction: boolean;
}

/**
 * A pg `Client`, `PoolClient` or `Pool`, as `postgresRepo` takes it.
 *
 * @example
 * import pg from 'pg';
 * const pool: PostgresConnection = new pg.Pool({ database: 'shop' });
 */
export interface PostgresConnection {
  // `any` parameters: pg's query is overloaded, and any of its overloads must fit.
  query(...args: any[]): unknown;
}
