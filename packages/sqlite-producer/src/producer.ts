import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createMessage, type Producer, type ProducerController, type ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { warnSqliteThreadHazard } from '@throughway/workers/internal';
import { sqliteDriver } from './connection.js';
import { QueueAckRef, queueAcknowledger, type QueueAckData, type QueueStats } from './acknowledger.js';
import { queueCounts } from './inspect.js';
import { resolveQueueOptions, type ResolvedQueueOptions, type SqliteQueueOptions } from './options.js';
import { QueueStore, openQueueStore, payloadBytes, type ClaimedRow, type QueueStoreLike, type StoreConfig } from './queue-store.js';
import { ThreadedQueueStore } from './threaded-store.js';

/**
 * One queue-mode producer: its own connection, its own leases (`leased_by`), its own counters.
 *
 * Demand handling: `handleDemand(n)` adds `n` to what it owes and claims what it owes in one
 * transaction. What it cannot deliver now it looks for every `pollInterval` ms with a timer
 * (a normal, ref'd timer: a running pipeline waiting for rows must keep the process alive),
 * emitting what it finds through `controller.push`. `prepareForDraining` stops the timer;
 * `terminate` writes pending acks and closes the connection, after which nothing of it keeps
 * the process alive.
 *
 * With `thread: true` the connection lives on a store thread of its own: `init`,
 * `prepareForDraining` and `terminate` return promises, `handleDemand` returns what was
 * prefetched and asks the thread for the rest, which arrives through `controller.push`.
 *
 * Usually built by {@link sqliteQueue}; direct use is for driving a producer by hand.
 *
 * @example
 * const producer = new SqliteQueueProducer({ database: 'queue.db' })
 * producer.init({ push: (events) => handle(events), exhausted: () => {}, pipelineName: 'manual', index: 0, hasTransformer: false })
 * const messages = producer.handleDemand(100) // up to 100 leased rows as messages
 * await queueAcknowledger.ack(messages[0].acknowledger.ref, messages, [])
 * producer.terminate()
 */
export class SqliteQueueProducer implements Producer<ThroughwayMessage> {
  readonly index: number;
  readonly options: ResolvedQueueOptions;
  #stats: QueueStats = { claimed: 0, acked: 0, committed: 0, retried: 0, deadLettered: 0, errors: 0 };
  #store: QueueStoreLike | undefined;
  #ref: QueueAckRef | undefined;
  #controller: ProducerController | undefined;
  /** Demand received and not yet answered. */
  #owed = 0;
  /** Rows claimed beyond the demand (`prefetch`), leased and waiting for demand. */
  #prefetched: ClaimedRow[] = [];
  /** Their payloads' size (payloadBytes), bounded by `prefetchBytes`. */
  #prefetchedBytes = 0;
  /** Renews the leases of prefetched rows while any wait (see #watchLeases). */
  #renewTimer: NodeJS.Timeout | undefined;
  /** Store thread only: the claim under way. */
  #claiming: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #initialized = false;
  #draining = false;
  #terminated = false;

  /** Checks the options (see {@link sqliteQueue}); nothing is opened before `init`. */
  constructor(options: SqliteQueueOptions, index = 0) {
    this.options = resolveQueueOptions(options);
    this.index = index;
  }

  /** The name this producer leases rows under (`leased_by`): `host:pid:index:tag`. */
  get leasedBy(): string | undefined {
    return this.#store?.leasedBy;
  }

  /** Demand received and not answered yet. */
  get owed(): number {
    return this.#owed;
  }

  /** Opens the connection (WAL, busy_timeout) and creates the tables unless `migrate: false`. */
  init(controller: ProducerController): void | Promise<void> {
    if (this.#initialized) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'this sqlite queue producer was already initialized');
    this.#initialized = true;
    this.#controller = controller;
    const o = this.options;
    const config: StoreConfig = { database: o.database, busyTimeout: o.busyTimeout, migrate: o.migrate, table: o.table, leaseMs: o.leaseMs, maxAttempts: o.maxAttempts, maxDeliveries: o.maxDeliveries, onSuccess: o.onSuccess };
    const leasedBy = `${hostname()}:${process.pid}:${this.index}:${randomBytes(4).toString('hex')}`;
    if (!o.thread) return this.#attach(openQueueStore(config, leasedBy));
    warnSqliteThreadHazard(import.meta.url, (message) => process.emitWarning(message, { code: 'THROUGHWAY_SQLITE_THREADS' }));
    return ThreadedQueueStore.start(config, leasedBy).then((store) => this.#attach(store));
  }

  #attach(store: QueueStoreLike): void {
    this.#store = store;
    this.#ref = new QueueAckRef(store, this.#stats, this.options.backoff, this.options.leaseMs);
  }

  handleDemand(demand: number): ThroughwayMessage[] {
    if (!this.#store) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'handleDemand was called before init (or before its promise settled)');
    this.#owed += demand;
    if (this.#draining) return [];
    const messages = this.#fromPrefetched();
    if (this.#store instanceof QueueStore) {
      if (this.#owed > 0) this.#deliver(this.#claimNow(), messages);
      if (this.#owed > 0) this.#schedulePoll();
    } else this.#claimOnThread();
    return messages;
  }

  /** Stops polling and gives back prefetched rows; rows already emitted are still processed and acked. */
  prepareForDraining(): void | Promise<void> {
    this.#draining = true;
    this.#clearTimer();
    // On a store thread, a claim under way still delivers (through push) before the drain goes on.
    if (this.#claiming) return this.#claiming.then(() => this.#releasePrefetched());
    return this.#releasePrefetched();
  }

  /** Writes pending acks and closes the connection (and ends the store thread). Idempotent. */
  terminate(): void | Promise<void> {
    if (this.#terminated || !this.#store) return;
    this.#terminated = true;
    this.#draining = true;
    this.#clearTimer();
    const store = this.#store;
    if (store instanceof QueueStore) {
      try {
        this.#releasePrefetched();
        this.#ref!.close();
      } finally {
        store.close();
      }
      return;
    }
    return (async () => {
      try {
        await this.#claiming;
        await this.#releasePrefetched();
        await this.#ref!.close();
      } finally {
        await store.close();
      }
    })();
  }

  /** Counters: rows claimed, acked, retried, dead-lettered, and errors. */
  stats(): QueueStats {
    return { ...this.#stats, deadLettered: this.#stats.deadLettered + (this.#store?.deadAtClaim ?? 0) };
  }

  #fromPrefetched(): ThroughwayMessage[] {
    if (this.#prefetched.length === 0 || this.#owed === 0) return [];
    const rows = this.#prefetched.splice(0, Math.min(this.#owed, this.#prefetched.length));
    for (const r of rows) this.#prefetchedBytes -= payloadBytes(r.payload);
    this.#watchLeases();
    this.#owed -= rows.length;
    this.#stats.claimed += rows.length;
    return rows.map((r) => this.#message(r));
  }

  // One claim for what is owed (plus `prefetch`), on this thread.
  #claimNow(): ClaimedRow[] {
    try {
      return (this.#store as QueueStore).claim(this.#owed, ...this.#room());
    } catch (error) {
      this.#failed(error);
      return [];
    }
  }

  // Store thread: one claim at a time; demand that arrives meanwhile is served by the next one.
  #claimOnThread(): void {
    if (this.#claiming || this.#draining || this.#owed <= 0) return;
    const want = this.#owed;
    this.#claiming = (this.#store!.claim(want, ...this.#room()) as Promise<ClaimedRow[]>).then(
      (rows) => {
        this.#claiming = undefined;
        if (this.#terminated) {
          // Stopped meanwhile: give them back rather than emit into a stopped pipeline.
          this.#prefetched.push(...rows);
          this.#watchLeases();
          return;
        }
        const messages: ThroughwayMessage[] = [];
        this.#deliver(rows, messages);
        if (messages.length > 0) this.#controller!.push(messages);
        if (this.#owed > 0) {
          if (rows.length >= want) this.#claimOnThread();
          else this.#schedulePoll();
        }
      },
      (error) => {
        this.#claiming = undefined;
        this.#failed(error);
        this.#schedulePoll();
      },
    );
  }

  // Turns claimed rows into messages for what is owed; the rest waits in #prefetched.
  #deliver(rows: ClaimedRow[], out: ThroughwayMessage[]): void {
    const take = Math.min(this.#owed, rows.length);
    for (let i = 0; i < take; i++) out.push(this.#message(rows[i]!));
    for (let i = take; i < rows.length; i++) {
      this.#prefetched.push(rows[i]!);
      this.#prefetchedBytes += payloadBytes(rows[i]!.payload);
    }
    this.#watchLeases();
    this.#owed -= take;
    this.#stats.claimed += take;
  }

  #message(row: ClaimedRow): ThroughwayMessage {
    const data: QueueAckData = { id: row.id, attempts: row.attempts, deliveries: row.deliveries, lease: row.lease, seq: this.#ref!.delivered(row.id, row.lease) };
    let metadata: Record<string, unknown> | undefined;
    if (this.options.metadata) {
      metadata = { id: row.id, attempts: row.attempts, deliveries: row.deliveries };
      if (row.metadata !== null) {
        try {
          metadata = { ...(JSON.parse(row.metadata) as Record<string, unknown>), id: row.id, attempts: row.attempts, deliveries: row.deliveries };
        } catch {
          // Stored metadata that is not JSON is left out rather than failing the row.
        }
      }
    }
    return createMessage(row.payload, { acknowledger: { module: queueAcknowledger, ref: this.#ref, data }, metadata });
  }

  #schedulePoll(): void {
    if (this.#timer || this.#draining) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#draining || this.#owed <= 0) return;
      if (!(this.#store instanceof QueueStore)) return this.#claimOnThread();
      const messages = this.#fromPrefetched();
      this.#deliver(this.#claimNow(), messages);
      if (messages.length > 0) this.#controller!.push(messages);
      if (this.#owed > 0) this.#schedulePoll();
    }, this.options.pollInterval);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // What a claim may take beyond the demand: [rows, bytes] left of `prefetch` and `prefetchBytes`.
  #room(): [number, number] {
    const o = this.options;
    return [Math.max(0, o.prefetch - this.#prefetched.length), Math.max(0, o.prefetchBytes - this.#prefetchedBytes)];
  }

  // Prefetched rows wait for demand under leases taken at their claim; a slow pipeline (large
  // payloads) may not ask for them within leaseMs, and an expired lease hands them to another
  // claim while they still wait here (a duplicate inside one live process). So while any wait,
  // their leases are renewed every third of leaseMs: a row handed out has at least two thirds
  // of a lease left. Unref'd: it never keeps the process alive, and it stops with the buffer.
  #watchLeases(): void {
    if (this.#prefetched.length === 0 || this.#draining) {
      if (this.#renewTimer) clearInterval(this.#renewTimer);
      this.#renewTimer = undefined;
      return;
    }
    if (this.#renewTimer) return;
    this.#renewTimer = setInterval(() => this.#renew(), Math.max(1, Math.floor(this.options.leaseMs / 3)));
    this.#renewTimer.unref();
  }

  #renew(): void {
    const leases = [...new Set(this.#prefetched.map((r) => r.lease))];
    if (leases.length === 0 || !this.#store) return;
    try {
      const done = this.#store.renew(leases);
      if (done instanceof Promise) done.catch((error) => this.#failed(error));
    } catch (error) {
      this.#failed(error);
    }
  }

  #releasePrefetched(): void | Promise<void> {
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
    if (this.#prefetched.length === 0 || !this.#store) return;
    const rows = this.#prefetched;
    this.#prefetched = [];
    this.#prefetchedBytes = 0;
    // Not fatal if it fails: their leases expire and they are claimed again.
    try {
      const done = this.#store.release(rows);
      if (done instanceof Promise) return done.catch((error) => this.#failed(error));
    } catch (error) {
      this.#failed(error);
    }
  }

  #failed(error: unknown): void {
    this.#stats.errors++;
    try {
      this.options.onError(error);
    } catch {
      // A throwing onError must not stop polling.
    }
  }
}

/** What {@link sqliteQueue} returns: a producer factory for `producer.module`, with counters. */
export interface SqliteQueueSource {
  /** Builds producer `index` (the pipeline calls this once per `producer.concurrency`). */
  (index: number): SqliteQueueProducer;
  readonly options: ResolvedQueueOptions;
  /** The producers built so far. */
  readonly producers: readonly SqliteQueueProducer[];
  /** Counters summed over the producers. */
  stats(): QueueStats;
  /**
   * The queue's rows by state now, for metrics (`@throughway/metrics` reads it as
   * `throughway_source_messages{state}`): ready, delayed (in backoff or scheduled), leased (in
   * flight), done (`onSuccess: 'mark_done'`) and dead_lettered. Queue depth is ready + delayed.
   * One read on a short-lived connection of its own.
   */
  gauges(): Record<'ready' | 'delayed' | 'leased' | 'done' | 'dead_lettered', number>;
}

/**
 * A queue in a SQLite table as a pipeline source. Returns a factory for `producer.module`:
 * each producer (one per `producer.concurrency`) opens its own connection and claims rows with
 * a lease; the acknowledger deletes them on success and retries failures with a backoff, up to
 * `maxAttempts`, then moves them to `<table>_dead`. Options are checked here, before anything
 * opens.
 *
 * Delivery is at-least-once: a row whose lease expires (the process died, or a message took
 * longer than `leaseMs`) is claimed again.
 *
 * @example
 * const queue = sqliteQueue({ database: 'queue.db', table: 'orders', maxAttempts: 3 })
 * const pipeline = await Pipeline.start({
 *   name: 'orders',
 *   handlers: new URL('./handlers.js', import.meta.url),
 *   producer: { module: queue, concurrency: 1 },
 *   processors: { default: { concurrency: 4 } },
 * })
 * // ...
 * await pipeline.stop()
 * console.log(queue.stats()) // { claimed, acked, committed, retried, deadLettered, errors }
 */
export function sqliteQueue(options: SqliteQueueOptions): SqliteQueueSource {
  const resolved = resolveQueueOptions(options);
  sqliteDriver(); // fail here, naming the package to install, rather than at Pipeline.start
  const producers: SqliteQueueProducer[] = [];
  const factory = (index: number): SqliteQueueProducer => {
    const producer = new SqliteQueueProducer(options, index);
    producers.push(producer);
    return producer;
  };
  return Object.assign(factory, {
    options: resolved,
    producers,
    stats(): QueueStats {
      const sum: QueueStats = { claimed: 0, acked: 0, committed: 0, retried: 0, deadLettered: 0, errors: 0 };
      for (const p of producers) {
        const s = p.stats();
        sum.claimed += s.claimed;
        sum.acked += s.acked;
        sum.committed += s.committed;
        sum.retried += s.retried;
        sum.deadLettered += s.deadLettered;
        sum.errors += s.errors;
      }
      return sum;
    },
    gauges() {
      const c = queueCounts(resolved.database, { table: resolved.table });
      return { ready: c.ready, delayed: c.delayed, leased: c.leased, done: c.done, dead_lettered: c.dead };
    },
  });
}
