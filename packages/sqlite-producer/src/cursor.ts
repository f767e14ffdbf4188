import type { Statement } from 'better-sqlite3';
import { createMessage, type Producer, type ProducerController, type ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import type { CursorKey } from './ack-tracker.js';
import { openDatabase, sqliteDriver, type SqliteDatabase } from './connection.js';
import { CHECKPOINT_TABLE, columnsOf, createCheckpointTable, createCursorFailuresTable } from './migrate.js';
import { CursorAckRef, cursorAcknowledger, type CursorAckData, type CursorStats } from './cursor-acknowledger.js';
import { quoteIdentifier, resolveCursorOptions, type ResolvedCursorOptions, type SqliteCursorOptions } from './options.js';

/**
 * Reads an existing table in `key` order, `demand` rows at a time, without changing it (the
 * seed's `Users.list(limit: demand)`): `SELECT * FROM t WHERE key > ? ORDER BY key LIMIT ?`.
 * Message data is the row object. Acks move a checkpoint in `throughway_checkpoints`, only up
 * to the highest key below and at which every row was acked, so a restart resumes there and
 * re-reads at most the rows that were in flight (at-least-once). At the end of the table it
 * polls every `pollInterval` ms for new rows with higher keys.
 *
 * One cursor per checkpoint name: two cursors on the same name would read the same rows.
 *
 * @example
 * const cursor = new SqliteCursorProducer({ database: 'app.db', table: 'users' })
 * cursor.init({ push: () => {}, exhausted: () => {}, pipelineName: 'manual', index: 0, hasTransformer: false })
 * cursor.handleDemand(10) // the first 10 users, in id order, as messages
 * cursor.terminate()
 */
export class SqliteCursorProducer implements Producer<ThroughwayMessage> {
  readonly options: ResolvedCursorOptions;
  #stats: CursorStats = { read: 0, acked: 0, failed: 0, errors: 0, checkpoint: undefined };
  #db: SqliteDatabase | undefined;
  #ref: CursorAckRef | undefined;
  #controller: ProducerController | undefined;
  #first: Statement | undefined;
  #next: Statement | undefined;
  /** The key of the last row read (not acked): reads continue after it. */
  #position: CursorKey | undefined;
  #owed = 0;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  #terminated = false;
  /** The last read failed: an empty result says nothing about the end of the table. */
  #readFailed = false;

  /** Checks the options (see {@link sqliteCursor}); nothing is opened before `init`. */
  constructor(options: SqliteCursorOptions) {
    this.options = resolveCursorOptions(options);
  }

  /** Opens the connection, checks the table and key, creates the checkpoint tables, reads the checkpoint. */
  init(controller: ProducerController): void {
    if (this.#db) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'this sqlite cursor was already initialized');
    const o = this.options;
    const db = openDatabase(o.database, o.busyTimeout);
    try {
      const columns = columnsOf(db, o.table);
      if (columns.length === 0) {
        throw new ThroughwayError('ERR_THROUGHWAY_SQLITE_SCHEMA', `sqliteCursor: the table ${o.table} does not exist in ${o.database}`, { details: { table: o.table } });
      }
      if (!columns.includes(o.key)) {
        throw new ThroughwayError('ERR_THROUGHWAY_UNKNOWN_COLUMN', `sqliteCursor: the table ${o.table} has no column ${o.key} (its columns are ${columns.join(', ')})`, {
          details: { path: 'sqliteCursor.key', received: o.key, columns },
        });
      }
      db.transaction(() => {
        createCheckpointTable(db);
        createCursorFailuresTable(db);
      }).immediate();
      const row = db.prepare(`SELECT position FROM ${CHECKPOINT_TABLE} WHERE name = ?`).get(o.checkpointName) as { position: CursorKey } | undefined;
      this.#position = row?.position ?? undefined;
      const t = quoteIdentifier(o.table, 'sqliteCursor.table');
      const k = quoteIdentifier(o.key, 'sqliteCursor.key');
      // Rows with a NULL key are never read: NULL sorts first and matches no `>`.
      this.#first = db.prepare(`SELECT * FROM ${t} WHERE ${k} IS NOT NULL ORDER BY ${k} LIMIT ?`);
      this.#next = db.prepare(`SELECT * FROM ${t} WHERE ${k} > ? ORDER BY ${k} LIMIT ?`);
    } catch (error) {
      db.close();
      throw error;
    }
    this.#db = db;
    this.#stats.checkpoint = this.#position;
    this.#ref = new CursorAckRef(db, o.checkpointName, this.#position, this.#stats);
    this.#controller = controller;
  }

  handleDemand(demand: number): ThroughwayMessage[] {
    if (!this.#db) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'handleDemand was called before init');
    this.#owed += demand;
    if (this.#draining) return [];
    const messages = this.#fill();
    if (this.#owed > 0) {
      // Fewer rows than asked for: the end of the table (unless the read failed).
      if (this.options.untilEnd && !this.#readFailed) this.#controller!.exhausted?.();
      else this.#schedulePoll();
    }
    return messages;
  }

  prepareForDraining(): void {
    this.#draining = true;
    this.#clearTimer();
  }

  /** Writes the last checkpoint and closes the connection. Idempotent. */
  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#draining = true;
    this.#clearTimer();
    try {
      this.#ref?.close();
    } finally {
      this.#db?.close();
    }
  }

  /** Counters, and the committed checkpoint. */
  stats(): CursorStats {
    return { ...this.#stats };
  }

  #fill(): ThroughwayMessage[] {
    let rows: Record<string, unknown>[];
    this.#readFailed = false;
    try {
      rows = (this.#position === undefined ? this.#first!.all(this.#owed) : this.#next!.all(this.#position, this.#owed)) as Record<string, unknown>[];
    } catch (error) {
      this.#readFailed = true;
      this.#stats.errors++;
      try {
        this.options.onError(error);
      } catch {
        // A throwing onError must not stop polling.
      }
      return [];
    }
    if (rows.length === 0) return [];
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
    this.#position = rows[rows.length - 1]![key] as CursorKey;
    this.#owed -= rows.length;
    this.#stats.read += rows.length;
    return out;
  }

  #schedulePoll(): void {
    if (this.#timer || this.#draining) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#draining || this.#owed <= 0) return;
      const messages = this.#fill();
      if (messages.length > 0) this.#controller!.push(messages);
      if (this.#owed <= 0) return;
      if (this.options.untilEnd && !this.#readFailed) this.#controller!.exhausted?.();
      else this.#schedulePoll();
    }, this.options.pollInterval);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** What {@link sqliteCursor} returns: a producer factory for `producer.module` (concurrency 1 only). */
export interface SqliteCursorSource {
  (index: number): SqliteCursorProducer;
  readonly options: ResolvedCursorOptions;
  /** The producer, once the pipeline built it. */
  readonly producer: SqliteCursorProducer | undefined;
  stats(): CursorStats | undefined;
}

/**
 * An existing table, read in key order, as a pipeline source that never changes the table; a
 * checkpoint makes restarts resume where every earlier row was acked. Failed messages are
 * recorded in `throughway_cursor_failures` and count as done. Needs `producer.concurrency` 1.
 *
 * @example
 * const users = sqliteCursor({ database: 'app.db', table: 'users', key: 'id', checkpointName: 'welcome-mails' })
 * const pipeline = await Pipeline.start({
 *   name: 'welcome-mails',
 *   handlers: new URL('./mail-handlers.js', import.meta.url),
 *   producer: { module: users },
 *   processors: { default: {} },
 * })
 */
export function sqliteCursor(options: SqliteCursorOptions): SqliteCursorSource {
  const resolved = resolveCursorOptions(options);
  sqliteDriver(); // fail here, naming the package to install, rather than at Pipeline.start
  let producer: SqliteCursorProducer | undefined;
  const factory = (index: number): SqliteCursorProducer => {
    if (index > 0) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `sqliteCursor supports \`producer.concurrency\` 1 only: a second cursor on ${resolved.table} would read the same rows`, {
        details: { path: 'producer.concurrency', received: index + 1 },
      });
    }
    producer = new SqliteCursorProducer(options);
    return producer;
  };
  // defineProperty, not Object.assign: assign would copy the getter's value once, at creation.
  Object.defineProperty(factory, 'producer', { get: () => producer, enumerable: true });
  return Object.assign(factory, { options: resolved, stats: () => producer?.stats() }) as unknown as SqliteCursorSource;
}
