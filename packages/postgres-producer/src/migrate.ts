import type pg from 'pg';
import { ThroughwayError } from '@throughway/workers';
import { invalid, quoteIdentifier, tableName } from './options.js';
import { queueNames } from './names.js';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Queue table. Default `'throughway_events'`; the dead-letter table is `<table>_dead`. */
  table?: string;
}

/** The name of the checkpoint table of cursor mode. */
export const CHECKPOINT_TABLE = 'throughway_checkpoints';

const QUEUE_COLUMNS = ['id', 'payload', 'metadata', 'attempts', 'deliveries', 'available_at', 'lease', 'leased_by', 'last_error', 'created_at', 'done_at'];
const DEAD_COLUMNS = ['id', 'payload', 'metadata', 'attempts', 'deliveries', 'last_error', 'created_at', 'failed_at'];

/**
 * Storage parameters the migration sets on the queue table. A queue table turns over every row:
 * each claim and ack leaves a dead tuple, so autovacuum must run by row count, not by the default
 * 20% of the table (which a table that is nearly empty between bursts never reaches), and without
 * the cost delay that would let it fall behind the churn. `fillfactor` leaves room on each page so
 * that a claim's UPDATE can often stay on the same page.
 */
export const QUEUE_STORAGE = [
  'fillfactor = 80',
  'autovacuum_vacuum_scale_factor = 0',
  'autovacuum_vacuum_threshold = 10000',
  'autovacuum_vacuum_cost_delay = 0',
  'autovacuum_analyze_scale_factor = 0',
  'autovacuum_analyze_threshold = 10000',
];

/**
 * Creates the queue table, its dead-letter table `<table>_dead`, the claim index, the NOTIFY
 * trigger and the cursor checkpoint table, if they do not exist, and sets the queue table's
 * autovacuum parameters ({@link QUEUE_STORAGE}). Idempotent; safe to run from several processes at
 * once (an advisory lock serializes them).
 *
 * The queue table:
 * - `id bigserial`: ids only grow, so a late ack can never touch a newer row;
 * - `payload text` handed to `message.data` as stored, never parsed; `metadata jsonb`;
 * - `attempts`: deliveries that ended in a failure ack; `deliveries`: every claim. A delivery that
 *   ended with no ack at all (a crash, an expired lease) shows as `deliveries - attempts` beyond the
 *   one in flight, bounded by `maxDeliveries` on its own;
 * - `available_at`: when the row may be claimed; a claim moves it to the end of the lease (the
 *   visibility timeout), so a killed process's rows come back by themselves;
 * - `lease`: the token of the claim that holds the row. Every ack matches on `(id, lease)`, so an
 *   ack from a lease that ran out and was claimed again by someone else changes nothing.
 *
 * The index `<table>_claim (available_at, id) WHERE done_at IS NULL` is what a claim reads; the
 * statement-level trigger `<table>_notify` announces inserts on the channel named like the table.
 *
 * @example
 * import pg from 'pg'
 * await migrate(new pg.Pool({ connectionString }), { table: 'orders_queue' })
 */
export async function migrate(db: pg.Pool | pg.ClientBase, options: MigrateOptions = {}): Promise<void> {
  if (options === null || typeof options !== 'object') invalid('migrate.options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (key !== 'table') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Unknown option \`migrate.${key}\`; the known one is table`, {
        details: { path: `migrate.${key}`, received: (options as Record<string, unknown>)[key] },
      });
    }
  }
  const n = queueNames(tableName(options.table, 'migrate.table', 'throughway_events'));
  const client = 'totalCount' in db ? await (db as pg.Pool).connect() : (db as pg.ClientBase);
  try {
    await client.query('BEGIN');
    try {
      // CREATE ... IF NOT EXISTS races on the catalog's unique index when two processes run it at once.
      await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`throughway:migrate:${n.table}`]);
      await client.query(`CREATE TABLE IF NOT EXISTS ${n.q} (
        id bigserial PRIMARY KEY,
        payload text NOT NULL,
        metadata jsonb,
        attempts integer NOT NULL DEFAULT 0,
        deliveries integer NOT NULL DEFAULT 0,
        available_at timestamptz NOT NULL DEFAULT now(),
        lease bigint,
        leased_by text,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        done_at timestamptz
      )`);
      await checkColumns(client, n.table, QUEUE_COLUMNS);
      await client.query(`ALTER TABLE ${n.q} SET (${QUEUE_STORAGE.join(', ')})`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${n.claimIndex} ON ${n.q} (available_at, id) WHERE done_at IS NULL`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${n.dead} (
        id bigint PRIMARY KEY,
        payload text NOT NULL,
        metadata jsonb,
        attempts integer NOT NULL,
        deliveries integer NOT NULL,
        last_error text,
        created_at timestamptz NOT NULL,
        failed_at timestamptz NOT NULL DEFAULT now()
      )`);
      // The channel name is a string literal here; it passed the identifier check, so it holds no quote.
      await client.query(`CREATE OR REPLACE FUNCTION ${n.notifyFunction}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('${n.channel}', ''); RETURN NULL; END $$`);
      await client.query(`DROP TRIGGER IF EXISTS ${n.notifyTrigger} ON ${n.q}`);
      await client.query(`CREATE TRIGGER ${n.notifyTrigger} AFTER INSERT ON ${n.q} FOR EACH STATEMENT EXECUTE FUNCTION ${n.notifyFunction}()`);
      await createCheckpointTable(client);
      await checkColumns(client, `${n.table}_dead`, DEAD_COLUMNS);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    if (client !== db) (client as pg.PoolClient).release();
  }
}

/** Creates `throughway_checkpoints` (cursor positions by name) if missing. */
export async function createCheckpointTable(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS ${quoteIdentifier(CHECKPOINT_TABLE, 'checkpoint table')} (
    name text PRIMARY KEY,
    position jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
  )`);
}

// CREATE TABLE IF NOT EXISTS keeps a table of the same name that someone else made: say so now
// rather than fail on the first claim with "column does not exist".
async function checkColumns(client: pg.ClientBase, table: string, expected: string[]): Promise<void> {
  const { rows } = await client.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = ANY (current_schemas(false))`,
    [table],
  );
  const have = new Set(rows.map((r) => r.column_name));
  const missing = expected.filter((c) => !have.has(c));
  if (missing.length > 0) {
    throw new ThroughwayError('ERR_THROUGHWAY_POSTGRES_SCHEMA', `The table ${table} exists but is not a Throughway queue table: it lacks the columns ${missing.join(', ')}`, {
      details: { table, missing },
    });
  }
}
