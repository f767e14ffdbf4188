import type { Statement } from 'better-sqlite3';
import type { Acknowledger, ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { errorText } from '@throughway/workers/internal';
import { ACK_BATCH } from './acknowledger.js';
import { AckTracker, type CursorKey } from './ack-tracker.js';
import type { SqliteDatabase } from './connection.js';
import { CHECKPOINT_TABLE, CURSOR_FAILURES_TABLE } from './migrate.js';
import { describeValue } from './options.js';

/** Counters of a cursor producer. */
export interface CursorStats {
  /** Rows emitted as messages. */
  read: number;
  /** Messages acked successfully. */
  acked: number;
  /** Messages acked as failed (recorded in `throughway_cursor_failures`). */
  failed: number;
  /** Reads or checkpoint writes that threw. */
  errors: number;
  /** The committed position: every row up to it was acked. */
  checkpoint: unknown;
}

/** What a cursor message carries for its acknowledger. */
export interface CursorAckData {
  key: CursorKey;
}

interface PendingFailure {
  key: CursorKey;
  row: string | null;
  error: string;
}

/**
 * The cursor's ack state (the `ref` of its messages): which keys were acked, and the checkpoint.
 *
 * A failed row in cursor mode has nowhere to go back to (the table is read, never changed), so
 * it is recorded in `throughway_cursor_failures` (with the row as JSON and the error) and counts
 * as done: the checkpoint moves past it. A restart therefore never re-reads it; look there to
 * replay it.
 *
 * Like queue acks, acks are collected and written once ACK_BATCH are waiting or on the next turn
 * of the event loop, failures and the new checkpoint in one IMMEDIATE transaction.
 */
export class CursorAckRef {
  readonly checkpointName: string;
  readonly stats: CursorStats;
  readonly tracker: AckTracker;
  #db: SqliteDatabase;
  #upsert: Statement;
  #recordFailure: Statement;
  #written: CursorKey | undefined;
  #ok: CursorKey[] = [];
  #failures: PendingFailure[] = [];
  #flush: Promise<void> | undefined;
  #closed = false;

  constructor(db: SqliteDatabase, checkpointName: string, committed: CursorKey | undefined, stats: CursorStats) {
    this.#db = db;
    this.checkpointName = checkpointName;
    this.stats = stats;
    this.tracker = new AckTracker(committed);
    this.#written = committed;
    this.#upsert = db.prepare(
      `INSERT INTO ${CHECKPOINT_TABLE} (name, position, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
    );
    this.#recordFailure = db.prepare(`INSERT OR REPLACE INTO ${CURSOR_FAILURES_TABLE} (checkpoint_name, key, row, last_error, failed_at) VALUES (?, ?, ?, ?, ?)`);
  }

  add(successful: readonly ThroughwayMessage[], failed: readonly ThroughwayMessage[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new ThroughwayError('ERR_THROUGHWAY_PRODUCER_TERMINATED', `sqlite cursor ${this.checkpointName} is terminated; the acks are dropped and the checkpoint stays where it was`));
    }
    for (const m of successful) {
      const data = m.acknowledger?.data as CursorAckData | undefined;
      if (data !== undefined && data !== null) this.#ok.push(data.key);
    }
    for (const m of failed) {
      const data = m.acknowledger?.data as CursorAckData | undefined;
      if (data === undefined || data === null) continue;
      this.#failures.push({ key: data.key, row: rowJson(m.data), error: errorText(m.status) });
    }
    if (this.#ok.length + this.#failures.length >= ACK_BATCH) {
      // Enough for one transaction: write now. Waiting for the event loop is not an option here:
      // a busy inline pipeline runs call after call in microtasks and may not yield to it for
      // seconds, while the rows' leases run out.
      try {
        this.flush();
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error);
      }
    }
    this.#flush ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        try {
          this.flush();
          resolve();
        } catch (error) {
          reject(error);
        }
      });
    });
    return this.#flush;
  }

  /** Records failures and moves the checkpoint over every row acked so far, in one transaction. */
  flush(): void {
    this.#flush = undefined;
    const ok = this.#ok;
    const failures = this.#failures;
    this.#ok = [];
    this.#failures = [];
    if (this.#closed) return;
    for (const key of ok) this.tracker.acked(key);
    for (const f of failures) this.tracker.acked(f.key);
    this.stats.acked += ok.length;
    this.tracker.advance();
    const position = this.tracker.committed;
    if (failures.length === 0 && position === this.#written) return;
    const now = Date.now();
    try {
      this.#db
        .transaction(() => {
          for (const f of failures) this.#recordFailure.run(this.checkpointName, f.key, f.row, f.error, now);
          if (position !== this.#written) this.#upsert.run(this.checkpointName, position, now);
        })
        .immediate();
    } catch (error) {
      // Try the failures again with the next flush; the checkpoint is rewritten then too.
      this.#failures.unshift(...failures);
      this.stats.errors++;
      throw error;
    }
    this.stats.failed += failures.length;
    this.#written = position;
    this.stats.checkpoint = position;
  }

  close(): void {
    try {
      this.flush();
    } finally {
      this.#closed = true;
    }
  }
}

function rowJson(row: unknown): string | null {
  try {
    return JSON.stringify(row) ?? null;
  } catch {
    return null;
  }
}

/**
 * The acknowledger of cursor mode: successful and failed rows both move the checkpoint (failed
 * ones are recorded in `throughway_cursor_failures`). It has no `configure`: there is nothing to
 * retry in a table that is only read.
 *
 * @example
 * cursorAcknowledger.ack(ref, successful, failed) // called by the pipeline
 */
export const cursorAcknowledger: Acknowledger = {
  // Reads only each message's ack data (its key): no processed data comes back.
  idsOnly: true,
  ack(ref: unknown, successful: ThroughwayMessage[], failed: ThroughwayMessage[]): Promise<void> {
    if (!(ref instanceof CursorAckRef)) {
      return Promise.reject(new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `cursorAcknowledger.ack: expected the ref of a sqlite cursor, got ${describeValue(ref)}`));
    }
    return ref.add(successful, failed);
  },
};
