/**
 * `--source postgres`: the PizzaBarn events queue in a table of the same Postgres database (and
 * schema) as the tables the pipeline writes, so that each batch commits its rows and the ack of its
 * events in one transaction (`ackInTransaction`: exactly-once). A run always starts from an empty
 * queue and empty tables: the generator's tally is only known for a run that enqueued everything.
 */
import type pg from 'pg';
import { deadLetters, enqueue, migrate, postgresQueue, queueCounts, queueDrained, type PostgresQueueSource } from '@throughway/postgres-producer';
import type { QueueState } from './check.js';
import { withUser, type DatabaseTarget } from './database.js';
import { reasonOf } from './decode.js';
import { UsageError } from './errors.js';
import { EventGenerator, type Tally } from './generator.js';

type PgTarget = Extract<DatabaseTarget, { kind: 'postgres' }>;

export const PG_QUEUE_TABLE = 'pizzabarn_events';
const CHUNK = 20_000;

/** The target's URL with the schema first on the search path of every connection opened from it. */
export function queueUrl(target: PgTarget): string {
  const option = `options=${encodeURIComponent(`-c search_path=${target.schema}`)}`;
  const url = withUser(target.url);
  return `${url}${url.includes('?') ? '&' : '?'}${option}`;
}

/** A pool on the schema (pg loaded on first use, as database.ts does). */
export async function openQueuePool(target: PgTarget, applicationName = 'mystex-pizza'): Promise<pg.Pool> {
  const { default: pgModule } = await import('pg');
  const pool = new pgModule.Pool({ connectionString: queueUrl(target), max: 2, application_name: applicationName });
  pool.on('error', () => undefined);
  return pool;
}

/** Creates the queue and fills it with the run's events; refuses a schema that holds an earlier run. */
export async function fillPgQueue(pool: pg.Pool, target: PgTarget, seed: number, events: number): Promise<{ tally: Tally; enqueueMs: number }> {
  const started = performance.now();
  await migrate(pool, { table: PG_QUEUE_TABLE });
  const { rows } = await pool.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM ${PG_QUEUE_TABLE}) + (SELECT count(*) FROM ${PG_QUEUE_TABLE}_dead) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM customers) AS n`,
  );
  if (Number(rows[0]!.n) > 0) {
    throw new UsageError(`the schema "${target.schema}" holds an earlier run; --source postgres starts from empty tables: pick another ?schema= or drop that one`);
  }
  const generator = new EventGenerator(seed, events);
  for (const chunk of generator.chunks(CHUNK)) await enqueue(pool, chunk, { table: PG_QUEUE_TABLE });
  return { tally: generator.tally(), enqueueMs: performance.now() - started };
}

/** Rows not yet acked (ready, leased, or waiting for a retry). */
export async function pgRemaining(pool: pg.Pool): Promise<number> {
  const c = await queueCounts(pool, { table: PG_QUEUE_TABLE });
  return c.ready + c.leased + c.delayed;
}

/**
 * True once no row waits to be acked: the run's end test, polled every 100 ms while the pipeline
 * runs. The producer package's `queueDrained` (an existence test on the claim index), not
 * `pgRemaining`'s counts, which read the whole table each time: ~45 ms of the server's CPU per poll
 * at 200,000 rows, taken from the pipeline it shares the cores with.
 */
export function pgDrained(pool: pg.Pool): Promise<boolean> {
  return queueDrained(pool, { table: PG_QUEUE_TABLE });
}

/** Remaining rows and dead letters by reason code, for the summary and the check. */
export async function pgQueueState(pool: pg.Pool): Promise<QueueState> {
  const byReason: Record<string, number> = {};
  for (const d of await deadLetters(pool, { table: PG_QUEUE_TABLE })) {
    const reason = reasonOf(d.last_error ?? '');
    byReason[reason] = (byReason[reason] ?? 0) + 1;
  }
  return { remaining: await pgRemaining(pool), deadLetters: byReason };
}

/** Drops the queue's tables and trigger function (before the schema's own clean-up). */
export async function dropPgQueue(pool: pg.Pool, target: PgTarget): Promise<void> {
  const s = `"${target.schema}"`;
  await pool.query(`DROP TABLE IF EXISTS ${s}.${PG_QUEUE_TABLE}, ${s}.${PG_QUEUE_TABLE}_dead, ${s}.throughway_checkpoints`);
  await pool.query(`DROP FUNCTION IF EXISTS ${s}.${PG_QUEUE_TABLE}_notify()`);
}

/**
 * The Postgres queue as the pipeline's source. Metadata stays on: it carries each row's lease,
 * which `ackInTransaction` matches. Claims of ~2000 rows (prefetch) keep the claims few, as on SQLite.
 */
export function pgSource(target: PgTarget, onError: (error: unknown) => void, applicationName = 'mystex-pizza'): PostgresQueueSource {
  return postgresQueue({
    connection: queueUrl(target),
    table: PG_QUEUE_TABLE,
    migrate: false,
    applicationName,
    leaseMs: 30_000,
    maxAttempts: 5,
    backoff: { baseMs: 250, maxMs: 5_000 },
    prefetch: 2000,
    onError,
  });
}
