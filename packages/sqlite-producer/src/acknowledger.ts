import type { Acknowledger, ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { errorText } from '@throughway/workers/internal';
import { describeValue } from './options.js';
import type { AckCounts, Failure, QueueStoreLike } from './queue-store.js';
import type { BackoffFunction } from './options.js';
import { AckWindow, type AckTicket, type AckWrite } from './ack-window.js';

/** Acks waiting to be written that make a write happen at once (see QueueAckRef). */
export const ACK_BATCH = 256;
/** Queue mode: a resolved prefix of this many acks is written at once (see QueueAckRef). */
export const QUEUE_ACK_BATCH = 4096;
/** Queue mode: how often waiting acks are written. */
export const QUEUE_ACK_DELAY_MS = 10;
/** Queue mode: acks held back behind an unresolved row are written after this long at most. */
export const QUEUE_ACK_MAX_WAIT_MS = 500;
/** Queue mode: this many waiting acks are written at once, gaps and all. */
export const QUEUE_ACK_MAX_WAITING = 32_768;
/**
 * Queue mode: an ack arriving this long after the last timed write does that write itself. A
 * busy inline pipeline runs call after call in microtasks and may not let the timer run for
 * seconds: its acks then waited past the rows' leases, which ran out and handed the rows out again.
 */
export const QUEUE_ACK_STARVED_MS = 50;

/** Counters of one queue producer. */
export interface QueueStats {
  /** Rows delivered as messages. */
  claimed: number;
  /** Rows deleted (or marked done) by successful acks, including those acked in the sink's transaction. */
  acked: number;
  /** Of `acked`: rows acked inside the handler's transaction (`ackInTransaction`, exactly-once). */
  committed: number;
  /** Failed rows put back to pending with a backoff. */
  retried: number;
  /** Rows moved to the dead-letter table (failures past maxAttempts, `retry: false`, poison rows). */
  deadLettered: number;
  /** Claims or acks that threw (a locked database past busyTimeout, say). */
  errors: number;
}

/** What a queue message carries for its acknowledger (`message.acknowledger.data`). */
export interface QueueAckData {
  id: number;
  /** The attempt this delivery is: failures so far + 1 (1 on the first). */
  attempts: number;
  /** Earlier deliveries that ended with no ack (a crash, an expired lease). */
  deliveries?: number;
  /** The lease this delivery was made under. */
  lease?: number;
  /** Set to false by `Message.configureAck(m, { retry: false })`. */
  retry?: boolean;
  /** The producer's delivery sequence number: where the ack waits to be written. */
  seq?: number;
  /** Set by `ackInTransaction`: the row was already deleted (or marked done) in the handler's transaction. */
  committed?: boolean;
}

/**
 * The acknowledger's per-producer state (the `ref` of every message a producer emits): the
 * producer's connection and the acks waiting to be written.
 *
 * Acks are collected in an {@link AckWindow} and written together, in one transaction: the
 * resolved prefix of the delivery order once QUEUE_ACK_BATCH rows form it, else every
 * QUEUE_ACK_DELAY_MS. A pipeline acks once per processor call or batch, and the batches of one
 * claim (split by batcher and batch key) ack interleaved ids; written as they came they cost a
 * DELETE per short run of ids and a commit per batch, while the resolved prefix is one range
 * (measured 1.7 vs 0.7 CPU-µs per row). Acks held back behind a slow row are written anyway once
 * they waited `maxWaitMs` (a quarter of the lease, at most QUEUE_ACK_MAX_WAIT_MS) or once
 * QUEUE_ACK_MAX_WAITING are waiting. Each `ack` returns a promise that settles when its rows are
 * written, so the pipeline's drain waits for them; `close` writes what is left. Holding an ack
 * only postpones a deletion: a crash before the write redelivers the rows (at-least-once).
 */
export class QueueAckRef {
  readonly store: QueueStoreLike;
  readonly stats: QueueStats;
  readonly backoff: BackoffFunction;
  readonly maxWaitMs: number;
  #window = new AckWindow();
  #timer: NodeJS.Timeout | undefined;
  /** When the timed write last ran (or the ref was made). */
  #lastTick = Date.now();
  #closed = false;

  constructor(store: QueueStoreLike, stats: QueueStats, backoff: BackoffFunction, leaseMs: number) {
    this.store = store;
    this.stats = stats;
    this.backoff = backoff;
    this.maxWaitMs = Math.max(1, Math.min(QUEUE_ACK_MAX_WAIT_MS, Math.floor(leaseMs / 4)));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The producer hands out the row `id` (leased under `lease`) as a message: returns its `seq` for the ack data. */
  delivered(id: number, lease: number): number {
    return this.#window.delivered(id, lease);
  }

  /** Queues acks; the returned promise settles once they are in the database. */
  add(successful: readonly ThroughwayMessage[], failed: readonly ThroughwayMessage[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(
        new ThroughwayError('ERR_THROUGHWAY_PRODUCER_TERMINATED', `sqlite queue producer ${this.store.leasedBy} is terminated; ${successful.length + failed.length} acks are dropped and their rows will be delivered again when their lease expires`),
      );
    }
    const now = Date.now();
    let settle!: (error?: unknown) => void;
    const promise = new Promise<void>((resolve, reject) => (settle = (error) => (error === undefined ? resolve() : reject(error))));
    const window = this.#window;
    const ticket = window.ticket(now, settle);
    for (const m of successful) {
      const data = m.acknowledger?.data as QueueAckData | undefined;
      if (!data || typeof data.id !== 'number') continue;
      if (data.committed) {
        // Deleted (or marked) in the sink's transaction already. It still goes through the window:
        // its position resolves the acks behind it, and its lease is counted off when the write
        // comes (whose DELETE finds no row for it: the row is gone, or done, for good).
        this.stats.acked++;
        this.stats.committed++;
      }
      window.acked(data.id, data.seq, data.lease ?? 0, undefined, ticket);
    }
    for (const m of failed) {
      const data = m.acknowledger?.data as QueueAckData | undefined;
      if (!data || typeof data.id !== 'number') continue;
      const lease = data.lease ?? 0;
      const failure = { id: data.id, attempts: data.attempts, deliveries: data.deliveries ?? 0, lease, error: errorText(m.status), retry: data.retry !== false, retryAt: now + this.backoff(data.attempts) };
      window.acked(data.id, data.seq, lease, failure, ticket);
    }
    if (ticket.remaining === 0) return Promise.resolve();
    window.advance();
    // Enough for one transaction: write now. Waiting for the event loop is not an option here:
    // a busy inline pipeline runs call after call in microtasks and may not yield to it for
    // seconds, while the rows' leases run out.
    if (window.waiting >= QUEUE_ACK_MAX_WAITING) this.#writeNow(window.takeOlderThan(Infinity));
    else if (window.ready >= QUEUE_ACK_BATCH) this.#writeNow(window.takeReady());
    else if (now - this.#lastTick >= QUEUE_ACK_STARVED_MS) this.#tick(now);
    this.#schedule();
    return promise;
  }

  /** Writes every waiting ack now, in one transaction. */
  flush(): void | Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#write(this.#window.takeOlderThan(Infinity));
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#window.waiting === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#tick(Date.now());
      this.#schedule();
    }, QUEUE_ACK_DELAY_MS);
  }

  // The timed write: the resolved prefix, and acks held back behind a slow row past maxWaitMs.
  #tick(now: number): void {
    this.#lastTick = now;
    const window = this.#window;
    const cutoff = now - this.maxWaitMs;
    this.#writeNow(window.oldest <= cutoff ? window.takeOlderThan(cutoff + 1) : window.takeReady());
  }

  // For writes nobody awaits: their outcome reaches the acks through their tickets.
  #writeNow(write: AckWrite): void {
    try {
      const result = this.#write(write);
      if (result) result.catch(() => undefined);
    } catch {
      // Rejected the tickets already.
    }
  }

  #write(write: AckWrite): void | Promise<void> {
    const { ok, leases, failures, tickets } = write;
    if (ok.length === 0 && failures.length === 0) return;
    if (this.#closed) return;
    let result: AckCounts | Promise<AckCounts>;
    try {
      result = this.store.ack(ok, leases, failures);
    } catch (error) {
      // The rows stay leased: they are delivered again when the lease expires (at-least-once).
      this.stats.errors++;
      for (const t of tickets) t.settle(error);
      throw error;
    }
    if (result instanceof Promise) {
      return result.then(
        (counts) => this.#done(counts, tickets),
        (error) => {
          this.stats.errors++;
          for (const t of tickets) t.settle(error);
          throw error;
        },
      );
    }
    this.#done(result, tickets);
  }

  #done(counts: AckCounts, tickets: Set<AckTicket>): void {
    this.stats.acked += counts.acked;
    this.stats.retried += counts.retried;
    this.stats.deadLettered += counts.deadLettered;
    for (const t of tickets) if (t.remaining === 0) t.settle();
  }

  /** Writes what is pending and refuses later acks. */
  close(): void | Promise<void> {
    try {
      return this.flush();
    } finally {
      this.#closed = true;
    }
  }
}

const CONFIGURE_OPTIONS = ['retry', 'committed'];

/**
 * The acknowledger of queue mode. `ack` deletes successful rows (or marks them done) and sends
 * failed ones back to pending with `attempts` and a backoff, or to `<table>_dead` past
 * `maxAttempts`. `configure(ref, data, { retry: false })` makes a failure permanent: the row is
 * dead-lettered at once; `{ committed: true }` is set by `ackInTransaction` for rows already acked
 * in the sink's transaction, which need no write here.
 *
 * @example
 * // in a handler module
 * handleMessage(_processor, message) {
 *   if (!valid(message.data)) return Message.failed(Message.configureAck(message, { retry: false }), 'invalid payload')
 *   return message
 * }
 */
export const queueAcknowledger: Acknowledger = {
  // Reads only each message's ack data (its row id and lease): no processed data comes back.
  idsOnly: true,
  ack(ref: unknown, successful: ThroughwayMessage[], failed: ThroughwayMessage[]): Promise<void> {
    if (!(ref instanceof QueueAckRef)) {
      return Promise.reject(new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `queueAcknowledger.ack: expected the ref of a sqlite queue producer, got ${describeValue(ref)}`));
    }
    return ref.add(successful, failed);
  },

  configure(_ref: unknown, data: unknown, options: unknown): QueueAckData {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `configureAck on a sqlite queue message expects { retry?: boolean, committed?: boolean }, got ${describeValue(options)}`, {
        details: { path: 'configureAck', received: options },
      });
    }
    const o = options as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !CONFIGURE_OPTIONS.includes(k));
    if (unknown.length > 0) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Unknown configureAck option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `\`${k}\``).join(', ')} for a sqlite queue message; the known ones are retry, committed`, {
        details: { path: 'configureAck', unknown },
      });
    }
    for (const key of CONFIGURE_OPTIONS) {
      if (o[key] !== undefined && typeof o[key] !== 'boolean') {
        throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Expected \`configureAck.${key}\` to be a boolean, got ${describeValue(o[key])}`, {
          details: { path: `configureAck.${key}`, received: o[key] },
        });
      }
    }
    const next = { ...(data as QueueAckData) };
    if (o.retry !== undefined) next.retry = o.retry as boolean;
    if (o.committed !== undefined) next.committed = o.committed as boolean;
    return next;
  },
};
