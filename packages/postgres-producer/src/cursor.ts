import { createMessage, type Producer, type ProducerController, type ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import type { CursorKey } from './checkpoint.js';
import { isConnectionError, openPool, reconnectDelay, type PoolHandle } from './connection.js';
import { CURSOR_FAILURES_TABLE, CursorAckRef, cursorAcknowledger, type CursorAckData, type CursorStats } from './cursor-acknowledger.js';
import { resolveCursorOptions, type PostgresCursorOptions, type ResolvedCursorOptions } from './cursor-options.js';
import { CHECKPOINT_TABLE, createCheckpointTable } from './migrate.js';
import { quoteIdentifier } from './options.js';

/**
 * Reads an existing table in `key` order without changing it (`SELECT * FROM t WHERE key > $1
 * ORDER BY key LIMIT $demand`), one read at a time; rows arrive through `controller.push`. Acks
 * move a checkpoint in `throughway_checkpoints` only up to the highest key below and at which
 * every row was acked, so a restart resumes there and re-reads at most the rows that were in
 * flight (at-least-once). At the end of the table it polls every `pollInterval` for rows with
 * higher keys; a read that fails for a lost connection is retried with a capped, jittered backoff.
 *
 * One cursor per checkpoint name: two cursors on one name would read the same rows.
 *
 * @example
 * const cursor = new PostgresCursorProducer({ connection: pool, table: 'users' })
 * await cursor.init({ push: (messages) => handle(messages), pipelineName: 'manual', index: 0, hasTransformer: false })
 * cursor.handleDemand(10) // the first 10 users, in id order, arrive through push
 * await cursor.terminate()
 */
export class PostgresCursorProducer implements Producer<ThroughwayMessage> {
  readonly options: ResolvedCursorOptions;
  readonly #stats: CursorStats = { read: 0, acked: 0, failed: 0, errors: 0, checkpoint: undefined };
  #pool: PoolHandle | undefined;
  #ref: CursorAckRef | undefined;
  #controller: ProducerController | undefined;
  #firstSql = '';
  #nextSql = '';
  /** The key of the last row read (not acked): reads continue after it. */
  #position: CursorKey | undefined;
  #owed = 0;
  #reading: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #draining = false;
  #terminated = false;

  /** Checks the options (see {@link postgresCursor}); nothing is opened before `init`. */
  constructor(options: PostgresCursorOptions) {
    this.options = resolveCursorOptions(options);
  }

  /** Opens the pool, checks the table and key, creates the checkpoint tables, reads the checkpoint. */
  async init(controller: ProducerController): Promise<void> {
    if (this.#pool) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'this postgres cursor was already initialized');
    const o = this.options;
    this.#pool = openPool(o.connection, o.applicationName, (error) => this.#report(error), 2);
    const pool = this.#pool.pool;
    try {
      const { rows } = await pool.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = ANY (current_schemas(false))`,
        [o.table],
      );
      if (rows.length === 0) throw new ThroughwayError('ERR_THROUGHWAY_UNKNOWN_TABLE', `postgresCursor: the table ${o.table} does not exist`, { details: { table: o.table } });
      const columns = rows.map((r) => r.column_name);
      if (!columns.includes(o.key)) {
        throw new ThroughwayError('ERR_THROUGHWAY_UNKNOWN_COLUMN', `postgresCursor: the table ${o.table} has no column ${o.key} (its columns are ${columns.join(', ')})`, {
          details: { path: 'postgresCursor.key', received: o.key, columns },
        });
      }
      const client = await pool.connect();
      try {
        // Serialized: CREATE ... IF NOT EXISTS races on the catalog when two processes run it at once.
        await client.query('BEGIN');
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('throughway:cursor-tables'))`);
        await createCheckpointTable(client);
        await client.query(`CREATE TABLE IF NOT EXISTS ${CURSOR_FAILURES_TABLE} (
          checkpoint_name text NOT NULL, key text NOT NULL, row jsonb, last_error text,
          failed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (checkpoint_name, key))`);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
      const saved = await pool.query<{ position: CursorKey | null }>(`SELECT position FROM ${CHECKPOINT_TABLE} WHERE name = $1`, [o.checkpointName]);
      this.#position = saved.rows[0]?.position ?? undefined;
      const t = quoteIdentifier(o.table, 'postgresCursor.table');
      const k = quoteIdentifier(o.key, 'postgresCursor.key');
      // Rows with a NULL key are never read: they match no `>`.
      this.#firstSql = `SELECT * FROM ${t} WHERE ${k} IS NOT NULL ORDER BY ${k} LIMIT $1`;
      this.#nextSql = `SELECT * FROM ${t} WHERE ${k} > $2 ORDER BY ${k} LIMIT $1`;
    } catch (error) {
      await this.#pool.release();
      throw error;
    }
    this.#stats.checkpoint = this.#position;
    this.#ref = new CursorAckRef(pool, o.checkpointName, this.#position, this.#stats);
    this.#controller = controller;
  }

  handleDemand(demand: number): ThroughwayMessage[] {
    if (!this.#ref) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'handleDemand was called before init (or before its promise settled)');
    this.#owed += demand;
    this.#read();
    return [];
  }

  async prepareForDraining(): Promise<void> {
    this.#draining = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#reading;
  }

  /** Writes the last checkpoint and ends the pool if the cursor built it. Idempotent. */
  async terminate(): Promise<void> {
    if (this.#terminated || !this.#pool) return;
    this.#terminated = true;
    await this.prepareForDraining();
    try {
      await this.#ref?.close();
    } finally {
      await this.#pool.release();
    }
  }

  /** Counters, and the committed checkpoint. */
  stats(): CursorStats {
    return { ...this.#stats };
  }

  #read(): void {
    if (this.#reading || this.#draining || this.#owed <= 0 || this.#timer) return;
    const want = this.#owed;
    const sql = this.#position === undefined ? this.#firstSql : this.#nextSql;
    const values = this.#position === undefined ? [want] : [want, this.#position];
    this.#reading = this.#pool!.pool.query<Record<string, unknown>>(sql, values).then(
      ({ rows }) => {
        this.#reading = undefined;
        this.#failures = 0;
        const messages = this.#messages(rows);
        if (messages.length > 0) this.#controller!.push(messages);
        if (this.#owed <= 0) return;
        if (rows.length >= want) this.#read();
        else this.#schedule(this.options.pollInterval);
      },
      (error) => {
        this.#reading = undefined;
        this.#stats.errors++;
        if (this.#failures === 0) this.#report(error);
        this.#failures++;
        this.#schedule(isConnectionError(error) ? reconnectDelay(this.#failures, this.options.maxReconnectDelay) : this.options.pollInterval);
      },
    );
  }

  #messages(rows: Record<string, unknown>[]): ThroughwayMessage[] {
    const key = this.options.key;
    const tracker = this.#ref!.tracker;
    const out = new Array<ThroughwayMessage>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const k = row[key] as CursorKey;
      tracker.emitted(k);
      const data: CursorAckData = { key: k };
      out[i] = createMessage(row, { acknowledger: { module: cursorAcknowledger, ref: this.#ref, data }, metadata: { key: k } });
    }
    if (rows.length > 0) this.#position = rows[rows.length - 1]![key] as CursorKey;
    this.#owed -= rows.length;
    this.#stats.read += rows.length;
    return out;
  }

  #schedule(ms: number): void {
    if (this.#timer || this.#draining) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#read();
    }, ms);
  }

  #report(error: unknown): void {
    try {
      this.options.onError(error);
    } catch {
      // A throwing onError must not stop the cursor.
    }
  }
}

/** What {@link postgresCursor} returns: a producer factory for `producer.module` (concurrency 1 only). */
export interface PostgresCursorSource {
  (index: number): PostgresCursorProducer;
  readonly options: ResolvedCursorOptions;
  /** The producer, once the pipeline built it. */
  readonly producer: PostgresCursorProducer | undefined;
  stats(): CursorStats | undefined;
}

/**
 * An existing Postgres table, read in key order, as a pipeline source that never changes the
 * table; a checkpoint makes restarts resume where every earlier row was acked. Failed messages
 * are recorded in `throughway_cursor_failures` and count as done. Needs `producer.concurrency` 1.
 *
 * @example
 * const users = postgresCursor({ connection: pool, table: 'users', key: 'id', checkpointName: 'welcome-mails' })
 * const pipeline = await Pipeline.start({
 *   name: 'welcome-mails',
 *   handlers: new URL('./mail-handlers.js', import.meta.url),
 *   producer: { module: users },
 *   processors: { default: {} },
 * })
 */
export function postgresCursor(options: PostgresCursorOptions): PostgresCursorSource {
  const resolved = resolveCursorOptions(options);
  let producer: PostgresCursorProducer | undefined;
  const factory = (index: number): PostgresCursorProducer => {
    if (index > 0) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `postgresCursor supports \`producer.concurrency\` 1 only: a second cursor on ${resolved.table} would read the same rows`, {
        details: { path: 'producer.concurrency', received: index + 1 },
      });
    }
    producer = new PostgresCursorProducer(options);
    return producer;
  };
  Object.defineProperty(factory, 'producer', { get: () => producer, enumerable: true });
  return Object.assign(factory, { options: resolved, stats: () => producer?.stats() }) as unknown as PostgresCursorSource;
}
