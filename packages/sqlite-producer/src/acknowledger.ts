import type { Acknowledger, MessageStatus, ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { describeValue } from './options.js';
import type { AckCounts, Failure, QueueStoreLike } from './queue-store.js';
import type { BackoffFunction } from './options.js';

/** Acks waiting to be written that make a write happen at once (see QueueAckRef). */
export const ACK_BATCH = 256;

/** Counters of one queue producer. */
export interface QueueStats {
  /** Rows delivered as messages. */
  claimed: number;
  /** Rows deleted (or marked done) by successful acks. */
  acked: number;
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
  /** The delivery this message is (1 on the first). */
  attempts: number;
  /** Set to false by `Message.configureAck(m, { retry: false })`. */
  retry?: boolean;
}

/**
 * The acknowledger's per-producer state (the `ref` of every message a producer emits): the
 * producer's connection and the acks waiting to be written.
 *
 * Acks are collected and written together, in one transaction, once ACK_BATCH rows are waiting
 * or on the next turn of the event loop, whichever comes first: a pipeline acks once per
 * processor call, and a transaction for every small call would cost more than the rows it
 * deletes. Each `ack` returns a promise that settles when its rows are written, so the
 * pipeline's drain waits for them; `terminate` writes what is left.
 */
export class QueueAckRef {
  readonly store: QueueStoreLike;
  readonly stats: QueueStats;
  readonly backoff: BackoffFunction;
  #ok: number[] = [];
  #failures: Failure[] = [];
  #flush: Promise<void> | undefined;
  #closed = false;

  constructor(store: QueueStoreLike, stats: QueueStats, backoff: BackoffFunction) {
    this.store = store;
    this.stats = stats;
    this.backoff = backoff;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues acks; the returned promise settles once they are in the database. */
  add(successful: readonly ThroughwayMessage[], failed: readonly ThroughwayMessage[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(
        new ThroughwayError('ERR_THROUGHWAY_PRODUCER_TERMINATED', `sqlite queue producer ${this.store.leasedBy} is terminated; ${successful.length + failed.length} acks are dropped and their rows will be delivered again when their lease expires`),
      );
    }
    for (const m of successful) {
      const data = m.acknowledger?.data as QueueAckData | undefined;
      if (data && typeof data.id === 'number') this.#ok.push(data.id);
    }
    for (const m of failed) {
      const data = m.acknowledger?.data as QueueAckData | undefined;
      if (!data || typeof data.id !== 'number') continue;
      this.#failures.push({ id: data.id, attempts: data.attempts, error: errorText(m.status), retry: data.retry !== false, retryAt: Date.now() + this.backoff(data.attempts) });
    }
    if (this.#ok.length + this.#failures.length >= ACK_BATCH) {
      // Enough for one transaction: write now. Waiting for the event loop is not an option here:
      // a busy inline pipeline runs call after call in microtasks and may not yield to it for
      // seconds, while the rows' leases run out.
      try {
        return this.flush() ?? Promise.resolve();
      } catch (error) {
        return Promise.reject(error);
      }
    }
    this.#flush ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(this.flush());
        } catch (error) {
          reject(error);
        }
      });
    });
    return this.#flush;
  }

  /** Writes the pending acks now, in one transaction (a promise when the store is on a thread). */
  flush(): void | Promise<void> {
    this.#flush = undefined;
    if (this.#ok.length === 0 && this.#failures.length === 0) return;
    const ok = this.#ok;
    const failures = this.#failures;
    this.#ok = [];
    this.#failures = [];
    if (this.#closed) return;
    let result: AckCounts | Promise<AckCounts>;
    try {
      result = this.store.ack(ok, failures);
    } catch (error) {
      // The rows stay leased: they are delivered again when the lease expires (at-least-once).
      this.stats.errors++;
      throw error;
    }
    if (result instanceof Promise) {
      return result.then(
        (counts) => this.#count(counts),
        (error) => {
          this.stats.errors++;
          throw error;
        },
      );
    }
    this.#count(result);
  }

  #count(counts: AckCounts): void {
    this.stats.acked += counts.acked;
    this.stats.retried += counts.retried;
    this.stats.deadLettered += counts.deadLettered;
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

/**
 * The text stored in `last_error`: the failure reason if it is a string, the message of an Error
 * reason or of a thrown error, else the reason as JSON.
 *
 * @example
 * errorText({ kind: 'failed', reason: { code: 'E_RATE' } }) // '{"code":"E_RATE"}'
 */
export function errorText(status: MessageStatus): string {
  if (status.kind === 'failed') {
    const reason = status.reason;
    if (typeof reason === 'string') return reason;
    if (reason !== null && typeof reason === 'object' && typeof (reason as { message?: unknown }).message === 'string' && Object.keys(reason).every((k) => k === 'name' || k === 'message')) {
      return (reason as { message: string }).message;
    }
    return toJson(reason);
  }
  if (status.kind === 'error') {
    const e = status.error as { message?: unknown } | undefined;
    return typeof e?.message === 'string' ? e.message : toJson(e);
  }
  return 'failed';
}

function toJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

const CONFIGURE_OPTIONS = ['retry'];

/**
 * The acknowledger of queue mode. `ack` deletes successful rows (or marks them done) and sends
 * failed ones back to pending with `attempts` and a backoff, or to `<table>_dead` past
 * `maxAttempts`. `configure(ref, data, { retry: false })` makes a failure permanent: the row is
 * dead-lettered at once.
 *
 * @example
 * // in a handler module
 * handleMessage(_processor, message) {
 *   if (!valid(message.data)) return Message.failed(Message.configureAck(message, { retry: false }), 'invalid payload')
 *   return message
 * }
 */
export const queueAcknowledger: Acknowledger = {
  ack(ref: unknown, successful: ThroughwayMessage[], failed: ThroughwayMessage[]): Promise<void> {
    if (!(ref instanceof QueueAckRef)) {
      return Promise.reject(new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `queueAcknowledger.ack: expected the ref of a sqlite queue producer, got ${describeValue(ref)}`));
    }
    return ref.add(successful, failed);
  },

  configure(_ref: unknown, data: unknown, options: unknown): QueueAckData {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `configureAck on a sqlite queue message expects { retry?: boolean }, got ${describeValue(options)}`, {
        details: { path: 'configureAck', received: options },
      });
    }
    const o = options as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !CONFIGURE_OPTIONS.includes(k));
    if (unknown.length > 0) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Unknown configureAck option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `\`${k}\``).join(', ')} for a sqlite queue message; the known one is retry`, {
        details: { path: 'configureAck', unknown },
      });
    }
    if (o.retry !== undefined && typeof o.retry !== 'boolean') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Expected \`configureAck.retry\` to be a boolean, got ${describeValue(o.retry)}`, {
        details: { path: 'configureAck.retry', received: o.retry },
      });
    }
    const current = data as QueueAckData;
    return o.retry === undefined ? { ...current } : { ...current, retry: o.retry };
  },
};
