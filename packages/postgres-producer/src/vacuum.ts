import type pg from 'pg';

/**
 * Vacuums the queue table after every `every` rows this producer removed or rewrote. A queue
 * table makes a dead tuple per claim and per ack; autovacuum wakes each database only every
 * `autovacuum_naptime` (1 min by default) and shares a few workers with every other table, and a
 * soak on a busy server saw it not run at all in 90 s while the table grew past 480 MiB. A
 * `VACUUM (SKIP_LOCKED)` of a table that holds few live rows takes milliseconds and blocks no claim
 * or ack (its lock conflicts only with other vacuums and DDL, which SKIP_LOCKED steps around).
 * One at a time per producer; a failure is reported and the next threshold tries again.
 */
export class QueueVacuum {
  readonly #pool: pg.Pool;
  readonly #sql: string;
  readonly #every: number;
  readonly #onError: (error: unknown) => void;
  #since = 0;
  #running: Promise<void> | undefined;
  /** Vacuums run so far. */
  runs = 0;

  constructor(pool: pg.Pool, quotedTable: string, every: number, onError: (error: unknown) => void) {
    this.#pool = pool;
    this.#sql = `VACUUM (SKIP_LOCKED) ${quotedTable}`;
    this.#every = every;
    this.#onError = onError;
  }

  /** Counts rows written by an ack; starts a vacuum once `every` have accumulated. */
  written(rows: number): void {
    if (this.#every === 0) return;
    this.#since += rows;
    if (this.#since < this.#every || this.#running) return;
    this.#since = 0;
    this.#running = this.#pool
      .query(this.#sql)
      .then(
        () => void this.runs++,
        (error) => this.#onError(error),
      )
      .finally(() => (this.#running = undefined));
  }

  /** Waits for a vacuum under way (before the pool ends). */
  async settle(): Promise<void> {
    await this.#running;
  }
}
