import type pg from 'pg';
import { ThroughwayError } from '@throughway/workers';
import { queueNames } from './names.js';
import { describeValue, invalid, tableName } from './options.js';

/** A payload with settings of its own. */
export interface EnqueueItem {
  /** Stored as text and handed to `message.data` as is. */
  payload: string;
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

// One statement carries this many rows: bounds the size of one parameter string, not a database limit.
const ROWS_PER_STATEMENT = 20_000;

function badItem(index: number, item: unknown): never {
  throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `enqueue: item ${index} must be a string or { payload: string, availableAt?, metadata? }, got ${describeValue(item)}`, {
    details: { index },
  });
}

/**
 * Inserts payloads into a queue table with `INSERT ... SELECT FROM unnest(...)` (one statement per
 * 20,000 rows, all in one transaction), so a bulk enqueue costs a few round trips, not one per
 * row. The table's statement trigger sends one NOTIFY per statement, which wakes the producers.
 * Every item is checked before anything is written. Resolves the number of rows inserted.
 *
 * @example
 * await enqueue(pool, ['{"order":1}', '{"order":2}'], { table: 'orders_queue' })
 * await enqueue(pool, [{ payload: '{"order":3}', availableAt: Date.now() + 60_000, metadata: { source: 'api' } }])
 */
export async function enqueue(db: pg.Pool | pg.ClientBase, payloads: readonly (string | EnqueueItem)[], options: EnqueueOptions = {}): Promise<number> {
  if (!Array.isArray(payloads)) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `enqueue expects a list of payloads, got ${describeValue(payloads)}`);
  if (options === null || typeof options !== 'object') invalid('enqueue.options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (key !== 'table') throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Unknown option \`enqueue.${key}\`; the known one is table`, { details: { path: `enqueue.${key}` } });
  }
  const n = queueNames(tableName(options.table, 'enqueue.table', 'throughway_events'));
  const total = payloads.length;
  if (total === 0) return 0;
  const texts = new Array<string>(total);
  const metas = new Array<string | null>(total);
  const ats = new Array<string | null>(total);
  let plain = true;
  for (let i = 0; i < total; i++) {
    const item = payloads[i] as unknown;
    if (typeof item === 'string') {
      texts[i] = item;
      metas[i] = null;
      ats[i] = null;
      continue;
    }
    plain = false;
    if (item === null || typeof item !== 'object') badItem(i, item);
    const { payload, availableAt, metadata } = item as EnqueueItem;
    if (typeof payload !== 'string') badItem(i, item);
    texts[i] = payload;
    ats[i] = null;
    if (availableAt instanceof Date && Number.isFinite(availableAt.getTime())) ats[i] = availableAt.toISOString();
    else if (availableAt !== undefined) {
      if (typeof availableAt !== 'number' || !Number.isFinite(availableAt)) {
        throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `enqueue: item ${i}.availableAt must be a time in ms or a valid Date, got ${describeValue(availableAt)}`, { details: { index: i } });
      }
      ats[i] = new Date(availableAt).toISOString();
    }
    if (metadata === undefined || metadata === null) metas[i] = null;
    else if (typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `enqueue: item ${i}.metadata must be an object, got ${describeValue(metadata)}`, { details: { index: i } });
    } else metas[i] = JSON.stringify(metadata);
  }
  const sql = plain
    ? `INSERT INTO ${n.q} (payload) SELECT * FROM unnest($1::text[])`
    : `INSERT INTO ${n.q} (payload, metadata, available_at) SELECT p, m, coalesce(a, now()) FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[]) AS u(p, m, a)`;
  const statements: unknown[][] = [];
  for (let at = 0; at < total; at += ROWS_PER_STATEMENT) {
    const end = Math.min(total, at + ROWS_PER_STATEMENT);
    statements.push(plain ? [texts.slice(at, end)] : [texts.slice(at, end), metas.slice(at, end), ats.slice(at, end)]);
  }
  const pooled = 'totalCount' in db;
  const client = pooled ? await (db as pg.Pool).connect() : (db as pg.ClientBase);
  let count = 0;
  try {
    if (statements.length > 1) await client.query('BEGIN');
    try {
      for (const values of statements) count += (await client.query(sql, values)).rowCount ?? 0;
      if (statements.length > 1) await client.query('COMMIT');
    } catch (error) {
      if (statements.length > 1) await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    if (pooled) (client as pg.PoolClient).release();
  }
  return count;
}
