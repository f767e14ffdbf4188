import type Database from 'better-sqlite3';
import { requireDriver } from '@throughway/workers/internal';

/** A better-sqlite3 connection, as this package's functions accept it. */
export type SqliteDatabase = Database.Database;

let driver: typeof Database | undefined;

/**
 * better-sqlite3, loaded on first use: it is an optional peer dependency, so a missing one must
 * be an error that says what to install, not a failed import of this whole package.
 *
 * @example
 * const Database = sqliteDriver() // throws ERR_THROUGHWAY_MISSING_DRIVER when it is not installed
 */
export function sqliteDriver(): typeof Database {
  driver ??= requireDriver<typeof Database>(import.meta.url, { name: 'better-sqlite3', range: '^12.11 || ^13', user: '@throughway/sqlite-producer' });
  return driver;
}

/**
 * Opens a connection the way producers use it:
 * - WAL, so that readers never wait for the writer and a claim does not block other processes' reads;
 * - `synchronous = NORMAL`, which in WAL mode survives a process crash (kill -9) and loses at
 *   most the last transactions on power loss; FULL would fsync every claim and ack;
 * - `busy_timeout`, so that a claim or ack waits for another process's write lock instead of
 *   failing at once.
 *
 * @example
 * const db = openDatabase('/var/lib/app/queue.db', 5000)
 */
export function openDatabase(path: string, busyTimeout: number): SqliteDatabase {
  const Database = sqliteDriver();
  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${Math.trunc(busyTimeout)}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Runs `fn` with a connection: the one given, or one opened on the path and closed after.
 * Lets the inspection helpers and `migrate`/`enqueue` take either.
 */
export function withDatabase<T>(db: SqliteDatabase | string, fn: (db: SqliteDatabase) => T): T {
  if (typeof db !== 'string') return fn(db);
  const own = openDatabase(db, 5000);
  try {
    return fn(own);
  } finally {
    own.close();
  }
}
