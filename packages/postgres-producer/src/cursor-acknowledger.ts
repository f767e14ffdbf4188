import type pg from 'pg';
import type { Acknowledger, ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { errorText } from '@throughway/workers/internal';
import { ACK_BATCH, ACK_DELAY_MS } from './acknowledger.js';
import { CheckpointTracker, type CursorKey } from './checkpoint.js';
import { CHECKPOINT_TABLE } from './migrate.js';
import { describeValue } from './options.js';

/** Where cursor mode records the rows whose messages failed. */
export const CURSOR_FAILURES_TABLE = 'throughway_cursor_failures';

/** Counters of a cursor producer. */
export interface CursorStats {
  /** Rows emitted as messages. */
  read: number;
  /** Messages acked successfully. */
  acked: number;
  /** Messages acked as failed (recorded in `throughway_cursor_failures`). */
  failed: number;
  /** Reads or checkpoint writes that failed. */
  errors: number;
  /** The committed position: every row up to it was acked. */
  checkpoint: CursorKey | undefined;
}

/** What a cursor message carries for its acknowledger. */
export interface CursorAckData {
  key: CursorKey;
}

const WRITE_SQL = `WITH f AS (
    INSERT INTO ${CURSOR_FAILURES_TABLE} (checkpoint_name, key, row, last_error)
    SELECT $1, k, r, e FROM unnest($2::text[], $3::jsonb[], $4::text[]) AS u(k, r, e)
    ON CONFLICT (checkpoint_name, key) DO UPDATE SET row = excluded.row, last_error = excluded.last_error, failed_at = now()
  )
  INSERT INTO ${CHECKPOINT_TABLE} (name, position, updated_at) SELECT $1, $5::jsonb, now() WHERE $5::jsonb IS NOT NULL
  ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()`;

/**
 * The cursor's ack state (the `ref` of its messages). A failed row has nowhere to go back to (the
 * table is read, never changed): it is recorded in `throughway_cursor_failures` with the row and
 * its error, and counts as done, so the checkpoint moves past it. Acks are collected and written
 * as one statement (failures and the new checkpoint together) once ACK_BATCH wait or after
 * ACK_DELAY_MS; writes run one after the other, so an older checkpoint never overwrites a newer one.
 */
export class CursorAckRef {
  readonly checkpointName: string;
  readonly stats: CursorStats;
  readonly tracker: CheckpointTracker;
  #pool: pg.Pool;
  #written: CursorKey | undefined;
  #waiting = 0;
  #failures: { key: string; row: string; error: string }[] = [];
  #settlers: ((error?: unknown) => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(pool: pg.Pool, checkpointName: string, committed: CursorKey | undefined, stats: CursorStats) {
    this.#pool = pool;
    this.checkpointName = checkpointName;
    this.stats = stats;
    this.tracker = new CheckpointTracker(committed);
    this.#written = committed;
  }

  add(successful: readonly ThroughwayMessage[], failed: readonly ThroughwayMessage[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new ThroughwayError('ERR_THROUGHWAY_PRODUCER_TERMINATED', `postgres cursor ${this.checkpointName} is terminated; the acks are dropped and the checkpoint stays where it was`));
    }
    for (const m of successful) {
      const data = m.acknowledger?.data as CursorAckData | undefined;
      if (data === undefined || data === null) continue;
      this.tracker.acked(data.key);
      this.stats.acked++;
      this.#waiting++;
    }
    for (const m of failed) {
      const data = m.acknowledger?.data as CursorAckData | undefined;
      if (data === undefined || data === null) continue;
      this.tracker.acked(data.key);
      this.stats.failed++;
      this.#waiting++;
      this.#failures.push({ key: String(data.key), row: safeJson(m.data), error: errorText(m.status) });
    }
    const promise = new Promise<void>((resolve, reject) => this.#settlers.push((error) => (error === undefined ? resolve() : reject(error))));
    if (this.#waiting >= ACK_BATCH) this.#write();
    else this.#timer ??= setTimeout(() => this.#write(), ACK_DELAY_MS);
    return promise;
  }

  #write(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.tracker.advance();
    const failures = this.#failures;
    const settlers = this.#settlers;
    this.#failures = [];
    this.#settlers = [];
    this.#waiting = 0;
    const position = this.tracker.committed;
    const moved = position !== this.#written;
    this.#chain = this.#chain.then(async () => {
      if (!moved && failures.length === 0) return settlers.forEach((s) => s());
      try {
        await this.#pool.query(WRITE_SQL, [this.checkpointName, failures.map((f) => f.key), failures.map((f) => f.row), failures.map((f) => f.error), position === undefined ? null : JSON.stringify(position)]);
        this.#written = position;
        this.stats.checkpoint = position;
        for (const s of settlers) s();
      } catch (error) {
        // The checkpoint stays behind: a restart re-reads these rows (at-least-once).
        this.stats.errors++;
        for (const s of settlers) s(error);
      }
    });
    return this.#chain;
  }

  /** Writes what is waiting and refuses later acks. */
  async close(): Promise<void> {
    try {
      await this.#write();
    } finally {
      this.#closed = true;
    }
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return JSON.stringify(String(value));
  }
}

/**
 * The acknowledger of cursor mode: moves the checkpoint once every row up to a key was acked, and
 * records failed rows in `throughway_cursor_failures`.
 *
 * @example
 * // acks arrive from the pipeline; to drive it by hand:
 * await cursorAcknowledger.ack(message.acknowledger.ref, [message], [])
 */
export const cursorAcknowledger: Acknowledger = {
  ack(ref: unknown, successful: ThroughwayMessage[], failed: ThroughwayMessage[]): Promise<void> {
    if (!(ref instanceof CursorAckRef)) {
      return Promise.reject(new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `postgres cursorAcknowledger.ack: expected the ref of a postgres cursor, got ${describeValue(ref)}`));
    }
    return ref.add(successful, failed);
  },
};
