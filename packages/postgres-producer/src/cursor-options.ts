import { plainObject, onlyKeys } from '@throughway/workers/internal';
import { connectionFrom, invalid, onErrorFrom, quoteIdentifier, ranged, type Connection } from './options.js';

/** Options of {@link postgresCursor}. */
export interface PostgresCursorOptions {
  /** A `pg.Pool`, or a connection string (the cursor builds its own pool and ends it). */
  connection: Connection;
  /** The table to read in `key` order. It is never written to. */
  table: string;
  /** A unique, non-null, indexed column. Default `'id'`. */
  key?: string;
  /** Name of the checkpoint in `throughway_checkpoints`. Default: the table name. */
  checkpointName?: string;
  /** How often to look for new rows once the end of the table is reached. 1 ms to 1 h; default 1000 ms. */
  pollInterval?: number;
  /** `application_name` of the connections the cursor opens from a connection string. Default `'throughway'`. */
  applicationName?: string;
  /** Upper bound of the backoff after a lost connection. 10 ms to 10 min; default 5000 ms. */
  maxReconnectDelay?: number;
  /** Called once per failure episode (a read or checkpoint write that failed). Default: a process warning. */
  onError?: (error: unknown) => void;
}

export interface ResolvedCursorOptions {
  connection: Connection;
  table: string;
  key: string;
  checkpointName: string;
  pollInterval: number;
  applicationName: string;
  maxReconnectDelay: number;
  onError: (error: unknown) => void;
}

/** Checks the options of `postgresCursor` and fills in the defaults. */
export function resolveCursorOptions(input: unknown): ResolvedCursorOptions {
  const o = plainObject('postgresCursor', input);
  onlyKeys('postgresCursor', o, ['connection', 'table', 'key', 'checkpointName', 'pollInterval', 'applicationName', 'maxReconnectDelay', 'onError']);
  quoteIdentifier(o.table, 'postgresCursor.table');
  const key = o.key ?? 'id';
  quoteIdentifier(key, 'postgresCursor.key');
  const checkpointName = o.checkpointName ?? o.table;
  if (typeof checkpointName !== 'string' || checkpointName === '') invalid('postgresCursor.checkpointName', 'a non-empty string', o.checkpointName);
  const applicationName = o.applicationName ?? 'throughway';
  if (typeof applicationName !== 'string' || applicationName.length === 0 || applicationName.length > 63) invalid('postgresCursor.applicationName', 'a string of 1 to 63 characters', o.applicationName);
  return {
    connection: connectionFrom('postgresCursor.connection', o.connection),
    table: o.table as string,
    key: key as string,
    checkpointName,
    pollInterval: ranged('postgresCursor.pollInterval', o.pollInterval, 1000, 1, 3_600_000),
    applicationName,
    maxReconnectDelay: ranged('postgresCursor.maxReconnectDelay', o.maxReconnectDelay, 5000, 10, 600_000),
    onError: onErrorFrom('postgresCursor.onError', o.onError),
  };
}
