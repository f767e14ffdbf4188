import pg from 'pg';
import type { Connection } from './options.js';

/**
 * The producer's pool: the caller's `pg.Pool` as is, or one built from a connection string with
 * our `application_name` (so an operator, or a test, can find and terminate exactly these
 * connections) and ended by `release`.
 */
export interface PoolHandle {
  pool: pg.Pool;
  /** Ends the pool if we built it; leaves a caller's pool alone. */
  release(): Promise<void>;
}

/**
 * Opens (or adopts) a pool. A pool emits 'error' when an idle client's connection drops (a
 * terminated backend, a restarted server); without a listener that error would crash the process.
 * The pool has already dropped that client, and the next query opens a new connection, so the
 * error is only reported.
 */
export function openPool(connection: Connection, applicationName: string, onError: (error: unknown) => void, max = 4): PoolHandle {
  const own = typeof connection === 'string';
  const pool = own ? new pg.Pool({ connectionString: connection, application_name: applicationName, max }) : connection;
  const onPoolError = (error: unknown) => onError(error);
  pool.on('error', onPoolError);
  return {
    pool,
    async release() {
      if (own) await pool.end().catch(() => undefined);
      // After end(): a client that drops while the pool ends must still find a listener.
      pool.off('error', onPoolError);
    },
  };
}

/** A dedicated client (not from the pool: LISTEN belongs to one connection for its whole life). */
export function listenerClient(connection: Connection, applicationName: string): pg.Client {
  if (typeof connection === 'string') return new pg.Client({ connectionString: connection, application_name: applicationName });
  // A caller's pool: reuse its connection settings for the one extra connection.
  const options = (connection as pg.Pool & { options?: pg.ClientConfig }).options ?? {};
  return new pg.Client({ ...options, application_name: `${options.application_name ?? applicationName}` });
}

/**
 * Capped, jittered exponential delay for reconnect attempt `n` (1 on the first): a random value in
 * `[d/2, d]` where `d = min(cap, 50 ms * 2 ** (n - 1))`. The jitter keeps several processes that
 * lost the server at the same moment from all coming back at the same moment.
 *
 * @example
 * reconnectDelay(3, 5000) // between 100 and 200
 */
export function reconnectDelay(attempt: number, cap: number): number {
  const d = Math.min(cap, 50 * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(d / 2 + Math.random() * (d / 2));
}

/** True for errors after which the same statement may succeed on a new connection. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  // 57P01 admin_shutdown (pg_terminate_backend), 57P02/57P03 crash/cannot connect now, 08* connection exceptions.
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ENOENT' || code === 'ETIMEDOUT') return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|connection.*(closed|ended)|Client has encountered a connection error/i.test(message);
}
