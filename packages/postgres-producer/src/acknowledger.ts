import type { Acknowledger, ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { errorText } from '@throughway/workers/internal';
import { isConnectionError, reconnectDelay } from './connection.js';
import { describeValue, type BackoffFunction } from './options.js';
import { AckKind, type AckCounts, type AckEntry, type QueueStore } from './queue-store.js';

/** Waiting acks that make a write happen at once. */
export const ACK_BATCH = 2048;
/** How long acks wait for company before they are written. */
export const ACK_DELAY_MS = 5;

/** Counters of one queue producer. */
export interface QueueStats {
  /** Rows delivered as messages. */
  claimed: number;
  /** Rows deleted (or marked done) by successful acks, including those acked in the sink's transaction. */
  acked: number;
  /** Of `acked`: rows acked inside the handler's transaction (exactly-once). */
  committed: number;
  /** Failed rows put back with a backoff. */
  retried: number;
  /** Rows moved to the dead-letter table. */
  deadLettered: number;
  /** Acks that found their lease gone (it ran out and the row was claimed again): nothing was written. */
  stale: number;
  /** Claims or acks that failed (each failure episode also reaches `onError` once). */
  errors: number;
  /** Connections lost and found again. */
  reconnects: number;
  /** `VACUUM`s of the queue table this producer ran (see `vacuumEvery`). */
  vacuums: number;
}

export function emptyStats(): QueueStats {
  return { claimed: 0, acked: 0, committed: 0, retried: 0, deadLettered: 0, stale: 0, errors: 0, reconnects: 0, vacuums: 0 };
}

/** What a queue message carries for its acknowledger (`message.acknowledger.data`). */
export interface QueueAckData {
  id: number;
  /** The token of the claim that delivered it; acks match on it. */
  lease: number;
  /** Failed deliveries before this one. */
  attempts: number;
  /** Set to false by `Message.configureAck(m, { retry: false })`. */
  retry?: boolean;
  /** Set by the exactly-once helper: the row was already deleted (or marked) in the handler's transaction. */
  committed?: boolean;
}

interface Ticket {
  remaining: number;
  settle(error?: unknown): void;
}

/**
 * The acknowledger's per-producer state (the `ref` of every message a producer emits). Acks are
 * collected and written as one statement per group: at once when ACK_BATCH are waiting (a busy
 * inline pipeline may not yield to timers for a long time while leases run out), else after
 * ACK_DELAY_MS. Each `add` returns a promise that settles once its rows are written, so the
 * pipeline's drain waits for them. A write that fails for a lost connection is retried on a new
 * one with a capped, jittered backoff until `close`; any other failure rejects its acks and the rows
 * come back when their lease runs out (at-least-once).
 */
export class QueueAckRef {
  readonly store: QueueStore;
  readonly stats: QueueStats;
  #backoff: BackoffFunction;
  #maxReconnectDelay: number;
  #report: (error: unknown) => void;
  /** Told how many rows each ack write changed (the vacuum counts them). */
  onWritten: (rows: number) => void = () => undefined;
  #entries: AckEntry[] = [];
  #tickets: Ticket[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writes = new Set<Promise<void>>();
  #closed = false;

  constructor(store: QueueStore, stats: QueueStats, backoff: BackoffFunction, maxReconnectDelay: number, report: (error: unknown) => void) {
    this.store = store;
    this.stats = stats;
    this.#backoff = backoff;
    this.#maxReconnectDelay = maxReconnectDelay;
    this.#report = report;
  }

  add(successful: readonly ThroughwayMessage[], failed: readonly ThroughwayMessage[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new ThroughwayError('ERR_THROUGHWAY_PRODUCER_TERMINATED', `postgres queue producer is terminated; ${successful.length + failed.length} acks are dropped and their rows will be delivered again when their lease runs out`));
    }
    const ticket: Ticket = { remaining: 0, settle: () => undefined };
    const promise = new Promise<void>((resolve, reject) => (ticket.settle = (error) => (error === undefined ? resolve() : reject(error))));
    for (const m of successful) {
      const data = ackData(m);
      if (!data) continue;
      if (data.committed) {
        this.stats.acked++;
        this.stats.committed++;
        continue;
      }
      this.#entries.push({ id: data.id, lease: data.lease, kind: AckKind.Ok, error: null, delayMs: 0 });
      ticket.remaining++;
    }
    for (const m of failed) {
      const data = ackData(m);
      if (!data) continue;
      const retry = data.retry !== false;
      this.#entries.push({ id: data.id, lease: data.lease, kind: retry ? AckKind.Failed : AckKind.Dead, error: errorText(m.status), delayMs: retry ? this.#backoff(data.attempts + 1) : 0 });
      ticket.remaining++;
    }
    if (ticket.remaining === 0) return Promise.resolve();
    this.#tickets.push(ticket);
    if (this.#entries.length >= ACK_BATCH) this.#writeWaiting();
    else this.#timer ??= setTimeout(() => this.#writeWaiting(), ACK_DELAY_MS);
    return promise;
  }

  /** Dead-letters rows a claim found over maxDeliveries, without counting a failure. */
  undelivered(rows: readonly { id: number; lease: number; deliveries: number }[]): Promise<void> {
    const ticket: Ticket = { remaining: rows.length, settle: () => undefined };
    const promise = new Promise<void>((resolve, reject) => (ticket.settle = (error) => (error === undefined ? resolve() : reject(error))));
    for (const r of rows) {
      this.#entries.push({ id: r.id, lease: r.lease, kind: AckKind.Undelivered, error: `delivered ${r.deliveries - 1} times without an ack (the process died or the lease ran out each time)`, delayMs: 0 });
    }
    this.#tickets.push(ticket);
    this.#writeWaiting();
    return promise;
  }

  #writeWaiting(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#entries.length === 0) return;
    const entries = this.#entries;
    const tickets = this.#tickets;
    this.#entries = [];
    this.#tickets = [];
    const write = this.#write(entries).then(
      (counts) => {
        this.stats.acked += counts.acked;
        this.stats.retried += counts.retried;
        this.stats.deadLettered += counts.deadLettered;
        this.stats.stale += counts.stale;
        this.onWritten(counts.acked + counts.retried + counts.deadLettered);
        for (const t of tickets) t.settle();
      },
      (error) => {
        for (const t of tickets) t.settle(error);
      },
    );
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }

  async #write(entries: AckEntry[]): Promise<AckCounts> {
    for (let attempt = 1; ; attempt++) {
      try {
        const counts = await this.store.ack(entries);
        if (attempt > 1) this.stats.reconnects++;
        return counts;
      } catch (error) {
        this.stats.errors++;
        if (attempt === 1) this.#report(error);
        if (!isConnectionError(error) || this.#closed) throw error;
        await new Promise((resolve) => setTimeout(resolve, reconnectDelay(attempt, this.#maxReconnectDelay)));
      }
    }
  }

  /** Writes every waiting ack now; resolves when every write under way has ended. */
  async flush(): Promise<void> {
    this.#writeWaiting();
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes]);
  }

  /** Writes what is waiting and refuses later acks. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.#closed = true;
    }
  }
}

function ackData(m: ThroughwayMessage): QueueAckData | undefined {
  const data = m.acknowledger?.data as QueueAckData | undefined;
  return data && typeof data.id === 'number' && typeof data.lease === 'number' ? data : undefined;
}

const CONFIGURE_OPTIONS = ['retry', 'committed'];

function configureError(path: string, message: string, received: unknown): ThroughwayError {
  return new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', message, { details: { path, received } });
}

/**
 * The acknowledger of queue mode. `ack` deletes successful rows (or marks them done) and sends
 * failed ones back with a backoff, or to `<table>_dead` past `maxAttempts`.
 * `configure(ref, data, { retry: false })` makes a failure permanent (dead-lettered at once);
 * `{ committed: true }` is set by `ackInTransaction` for rows already acked in the sink's
 * transaction, which need no write here.
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
      return Promise.reject(new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `postgres queueAcknowledger.ack: expected the ref of a postgres queue producer, got ${describeValue(ref)}`));
    }
    return ref.add(successful, failed);
  },

  configure(_ref: unknown, data: unknown, options: unknown): QueueAckData {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw configureError('configureAck', `configureAck on a postgres queue message expects { retry?: boolean }, got ${describeValue(options)}`, options);
    }
    const o = options as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !CONFIGURE_OPTIONS.includes(k));
    if (unknown.length > 0) {
      throw configureError('configureAck', `Unknown configureAck option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `\`${k}\``).join(', ')} for a postgres queue message; the known ones are retry, committed`, unknown);
    }
    for (const key of CONFIGURE_OPTIONS) {
      if (o[key] !== undefined && typeof o[key] !== 'boolean') throw configureError(`configureAck.${key}`, `Expected \`configureAck.${key}\` to be a boolean, got ${describeValue(o[key])}`, o[key]);
    }
    const next = { ...(data as QueueAckData) };
    if (o.retry !== undefined) next.retry = o.retry as boolean;
    if (o.committed !== undefined) next.committed = o.committed as boolean;
    return next;
  },
};
