import type Database from 'better-sqlite3';
import { requireDriver } from '@throughway/workers/internal';
import { ThroughwayError } from '@throughway/workers';

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
  let db: SqliteDatabase;
  try {
    db = new Database(path);
  } catch (error) {
    throw openError(path, error);
  }
  try {
    db.pragma(`busy_timeout = ${Math.trunc(busyTimeout)}`);
    // The first statement that reads the file: "file is not a database" surfaces here.
    whileBusy(() => db.pragma('journal_mode = WAL'), busyTimeout);
    db.pragma('synchronous = NORMAL');
  } catch (error) {
    db.close();
    throw openError(path, error);
  }
  return db;
}

/**
 * Runs `step` again while it fails with SQLITE_BUSY, until `busyTimeout` ms have passed. Switching
 * a new file to WAL takes an exclusive lock; while another connection (another process or thread
 * starting on the same new file) sets it up at that moment, SQLite can answer SQLITE_BUSY at once
 * instead of waiting for the busy timeout (its deadlock avoidance). Four processes opening one new
 * file at the same instant failed so in 2-4 of 20 tries.
 */
function whileBusy<T>(step: () => T, busyTimeout: number): T {
  const deadline = Date.now() + busyTimeout;
  for (;;) {
    try {
      return step();
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw error;
      // Start-up only: a short synchronous pause, as the busy handler itself would take.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

/**
 * The error of a database that cannot be opened or set up (a missing directory, a file that is
 * not a database, no permission, a locked file past busy_timeout), as a ThroughwayError with
 * code `ERR_THROUGHWAY_SQLITE_OPEN` naming the path; the driver's error is its `cause` and its
 * code (SQLITE_NOTADB, ...) is in `details.sqliteCode`. ThroughwayErrors pass through.
 *
 * @example
 * try { openDatabase('/no/such/dir/q.db', 5000) } catch (e) { e.code } // 'ERR_THROUGHWAY_SQLITE_OPEN'
 */
export function openError(path: string, error: unknown): Error {
  if (error instanceof ThroughwayError) return error;
  const e = error as { message?: unknown; code?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const sqliteCode = typeof e?.code === 'string' ? e.code : undefined;
  return new ThroughwayError('ERR_THROUGHWAY_SQLITE_OPEN', `Cannot open the SQLite database ${JSON.stringify(path)}: ${message}`, {
    cause: error,
    details: { path, ...(sqliteCode ? { sqliteCode } : {}) },
  });
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
