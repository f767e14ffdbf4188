/**
 * Where the demo writes: a SQLite file (the default, no server) or a Postgres database given as a
 * `postgres://` URL. Parsed once on the main thread into plain data, because it travels to the
 * batch worker threads in the pipeline's `context` (which is structured-cloned).
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { SetupError, UsageError } from './errors.js';

export type DatabaseTarget =
  | { kind: 'sqlite'; path: string }
  | {
      kind: 'postgres';
      /** The URL without our own `schema` parameter, as pg accepts it. */
      url: string;
      /** Every table of the demo lives in this schema, so runs and tests do not collide. */
      schema: string;
      /** The URL as given, with the password hidden, for messages. */
      display: string;
    };

export const DEFAULT_SQLITE_PATH = path.join(os.tmpdir(), 'mystex-pizza.db');
export const DEFAULT_PG_SCHEMA = 'mystex';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * `postgres://user@host:5432/db?schema=name` (or `postgresql://`, or the socket form
 * `postgres:///db?host=/var/run/postgresql`) selects Postgres; anything else is a SQLite path.
 */
export function parseDatabase(spec: string | undefined): DatabaseTarget {
  if (spec === undefined || spec === '') return { kind: 'sqlite', path: DEFAULT_SQLITE_PATH };
  if (!/^postgres(ql)?:\/\//i.test(spec)) return { kind: 'sqlite', path: path.resolve(spec) };
  // Not WHATWG URL: it rejects forms libpq and pg accept, such as postgres://user@/db?host=/socket.
  const q = spec.indexOf('?');
  const base = q >= 0 ? spec.slice(0, q) : spec;
  // Parameters are kept as written (pg decodes them); only our own `schema` is taken out.
  const parts = q >= 0 ? spec.slice(q + 1).split('&').filter(Boolean) : [];
  const ours = parts.filter((part) => part.startsWith('schema='));
  const schema = ours.length > 0 ? decodeURIComponent(ours.at(-1)!.slice('schema='.length)) : DEFAULT_PG_SCHEMA;
  if (!IDENT.test(schema)) throw new UsageError(`--database: schema must be a lower-case SQL identifier, got "${schema}"`);
  const rest = parts.filter((part) => !part.startsWith('schema=')).join('&');
  const url = rest ? `${base}?${rest}` : base;
  const display = `${url.replace(/^(postgres(?:ql)?:\/\/[^:/@?]*):[^@/?]*@/i, '$1:***@')}${rest ? '&' : '?'}schema=${schema}`;
  return { kind: 'postgres', url, schema, display };
}

export function describeTarget(target: DatabaseTarget): string {
  return target.kind === 'sqlite' ? `SQLite ${target.path}` : `Postgres ${target.display}`;
}

let driver: typeof Database | undefined;

/**
 * better-sqlite3, loaded on first use (it is CommonJS, so `require` keeps openSqlite synchronous):
 * every thread loads this module, and only the insert_all batch worker opens a connection. Loaded
 * at import, it cost the processor thread and the default batch worker ~35 ms of start-up each.
 */
function sqliteDriver(): typeof Database {
  return (driver ??= createRequire(import.meta.url)('better-sqlite3') as typeof Database);
}

/**
 * One connection per thread that needs it. WAL lets the check and a second process read while a
 * batch worker writes; synchronous=NORMAL is durable across a process crash (kill -9), which is
 * the failure the demo promises to survive (an OS crash may lose the last transactions, which the
 * queue then redelivers). Foreign keys are off by default in SQLite: they are a per-connection
 * pragma, so every connection turns them on.
 */
export function openSqlite(file: string, options: { readonly?: boolean } = {}): Database.Database {
  const db = new (sqliteDriver())(file, { timeout: 30_000, readonly: options.readonly ?? false });
  if (!options.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  }
  db.pragma('foreign_keys = ON');
  return db;
}

/**
 * pg takes the user from the URL, else from $PGUSER or $USER, and fails when none is set (as in
 * some containers). libpq falls back to the OS user name: do the same, so the error, if any, names
 * a role instead of a missing setting.
 */
export function withUser(url: string): string {
  const hasUser = /^postgres(ql)?:\/\/[^:/@?]+(:[^@/?]*)?@/i.test(url) || /[?&]user=/.test(url);
  if (hasUser || process.env.PGUSER || process.env.USER) return url;
  return `${url}${url.includes('?') ? '&' : '?'}user=${encodeURIComponent(os.userInfo().username)}`;
}

/**
 * Opens a client with the schema on its search path. `pg` is loaded here, on first use: every
 * thread loads this module, and on SQLite runs none of them needs pg (~35 ms of start-up each).
 */
export async function connectPostgres(target: Extract<DatabaseTarget, { kind: 'postgres' }>): Promise<pg.Client> {
  const { default: pgModule } = await import('pg');
  const client = new pgModule.Client({ connectionString: withUser(target.url), application_name: 'mystex-pizza' });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new SetupError(`could not connect to ${target.display}: ${(error as Error).message}`, { cause: error });
  }
  await client.query(`SET search_path TO "${target.schema}"`);
  return client;
}

/** The name to give insertAll and queries: schema-qualified on Postgres. */
export function tableName(target: DatabaseTarget, table: 'customers' | 'orders'): string {
  return target.kind === 'postgres' ? `${target.schema}.${table}` : table;
}
