import { hostname } from 'node:os';
import { randomInt } from 'node:crypto';
import { createMessage, type Producer, type ProducerController, type ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { QueueAckRef, emptyStats, queueAcknowledger, type QueueAckData, type QueueStats } from './acknowledger.js';
import { isConnectionError, openPool, reconnectDelay, type PoolHandle } from './connection.js';
import { NotifyListener } from './listener.js';
import { migrate } from './migrate.js';
import { resolveQueueOptions, type PostgresQueueOptions, type ResolvedQueueOptions } from './options.js';
import { QueueStore, type ClaimedRow } from './queue-store.js';
import { QueueVacuum } from './vacuum.js';

/** A prefetched row and when it was claimed (it is given back before its lease could run out). */
interface Held {
  row: ClaimedRow;
  at: number;
}

/**
 * One queue-mode producer: its pool, its LISTEN connection, its leases, its counters.
 *
 * Demand: `handleDemand(n)` adds `n` to what it owes, hands out prefetched rows, and starts a
 * claim for the rest unless one is under way; claimed rows arrive through `controller.push`. One
 * claim at a time: demand that arrives meanwhile is served by the next. When a claim comes back
 * short, the producer waits for a NOTIFY (rows were enqueued) or `pollInterval`, whichever comes
 * first. A claim that fails for a lost connection is retried with a capped, jittered backoff.
 * `prepareForDraining` stops claims, notifications and polling and gives prefetched rows back;
 * `terminate` writes the acks still waiting, then ends the connections it opened.
 *
 * Usually built by {@link postgresQueue}.
 *
 * @example
 * const producer = new PostgresQueueProducer({ connection: 'postgres:///test', table: 'jobs' })
 * await producer.init({ push: (messages) => handle(messages), pipelineName: 'manual', index: 0, hasTransformer: false })
 * producer.handleDemand(100) // up to 100 leased rows arrive through push
 * await producer.terminate()
 */
export class PostgresQueueProducer implements Producer<ThroughwayMessage> {
  readonly index: number;
  readonly options: ResolvedQueueOptions;
  readonly #stats: QueueStats = emptyStats();
  #pool: PoolHandle | undefined;
  #store: QueueStore | undefined;
  #ref: QueueAckRef | undefined;
  #listener: NotifyListener | undefined;
  #vacuum: QueueVacuum | undefined;
  #controller: ProducerController | undefined;
  #leasedBy = '';
  #owed = 0;
  #prefetched: Held[] = [];
  #claiming: Promise<void> | undefined;
  /** A NOTIFY came while a claim was under way: claim again when it ends. */
  #woken = false;
  #timer: NodeJS.Timeout | undefined;
  /** Consecutive claims that failed for a lost connection (0 when the last one worked). */
  #claimFailures = 0;
  #initialized = false;
  #draining = false;
  #terminated = false;

  /** Checks the options (see {@link postgresQueue}); nothing is opened before `init`. */
  constructor(options: PostgresQueueOptions, index = 0) {
    this.options = resolveQueueOptions(options);
    this.index = index;
  }

  /** Who holds this producer's leases (`leased_by`): `host:pid:index`. */
  get leasedBy(): string {
    return this.#leasedBy;
  }

  /** Demand received and not answered yet. */
  get owed(): number {
    return this.#owed;
  }

  /** Opens the pool, creates the tables unless `migrate: false`, and starts listening. */
  async init(controller: ProducerController): Promise<void> {
    if (this.#initialized) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'this postgres queue producer was already initialized');
    this.#initialized = true;
    this.#controller = controller;
    const o = this.options;
    this.#leasedBy = `${hostname()}:${process.pid}:${this.index}`;
    this.#pool = openPool(o.connection, o.applicationName, (error) => this.#failed(error));
    try {
      if (o.migrate) await migrate(this.#pool.pool, { table: o.table });
      this.#store = new QueueStore(this.#pool.pool, o.table, o);
      this.#ref = new QueueAckRef(this.#store, this.#stats, o.backoff, o.maxReconnectDelay, (error) => this.#failed(error));
      const vacuum = (this.#vacuum = new QueueVacuum(this.#pool.pool, this.#store.names.q, o.vacuumEvery, (error) => this.#failed(error)));
      this.#ref.onWritten = (rows) => vacuum.written(rows);
      if (o.listen) {
        this.#listener = new NotifyListener({
          connection: o.connection,
          applicationName: o.applicationName,
          channel: this.#store.names.channel,
          maxDelay: o.maxReconnectDelay,
          onNotify: () => this.#wake(),
          onError: (error) => this.#failed(error),
          onReconnect: () => this.#stats.reconnects++,
        });
        // A listener that cannot connect now keeps trying on its own; polling covers the gap.
        await this.#listener.start().catch(() => undefined);
      }
    } catch (error) {
      await this.#pool.release();
      throw error;
    }
  }

  handleDemand(demand: number): ThroughwayMessage[] {
    if (!this.#store) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'handleDemand was called before init (or before its promise settled)');
    this.#owed += demand;
    if (this.#draining) return [];
    const messages = this.#fromPrefetched();
    this.#claim();
    return messages;
  }

  /** Stops claims, notifications and polling, and gives prefetched rows back; emitted rows are still processed and acked. */
  async prepareForDraining(): Promise<void> {
    this.#draining = true;
    this.#clearTimer();
    await this.#listener?.stop();
    await this.#claiming;
    await this.#releasePrefetched();
  }

  /** Writes pending acks and ends the connections the producer opened. Idempotent. */
  async terminate(): Promise<void> {
    if (this.#terminated || !this.#pool) return;
    this.#terminated = true;
    this.#draining = true;
    this.#clearTimer();
    try {
      await this.#listener?.stop();
      await this.#claiming;
      await this.#releasePrefetched();
      await this.#ref?.close();
      await this.#vacuum?.settle();
    } finally {
      await this.#pool.release();
    }
  }

  /** Counters: rows claimed, acked, retried, dead-lettered, stale acks, errors, reconnects, vacuums. */
  stats(): QueueStats {
    return { ...this.#stats, vacuums: this.#vacuum?.runs ?? 0 };
  }

  /** The acknowledger state of this producer (for `ackInTransaction` tests and inspection). */
  get ackRef(): QueueAckRef | undefined {
    return this.#ref;
  }

  #wake(): void {
    if (this.#draining) return;
    if (this.#claiming) {
      this.#woken = true;
      return;
    }
    this.#clearTimer();
    this.#claim();
  }

  #fromPrefetched(): ThroughwayMessage[] {
    if (this.#prefetched.length === 0 || this.#owed === 0) return [];
    // A row that waited half its lease here goes back rather than out: its lease must not run out
    // while it is still in our own buffer.
    const freshAfter = Date.now() - this.options.leaseMs / 2;
    const stale = this.#prefetched.filter((h) => h.at < freshAfter);
    if (stale.length > 0) {
      this.#prefetched = this.#prefetched.filter((h) => h.at >= freshAfter);
      void this.#release(stale.map((h) => h.row));
    }
    const held = this.#prefetched.splice(0, Math.min(this.#owed, this.#prefetched.length));
    this.#owed -= held.length;
    this.#stats.claimed += held.length;
    return held.map((h) => this.#message(h.row));
  }

  #claim(): void {
    if (this.#claiming || this.#draining || this.#owed <= 0 || this.#timer) return;
    const want = this.#owed + this.options.prefetch;
    const lease = randomInt(1, 2 ** 47);
    this.#woken = false;
    this.#claiming = this.#store!.claim(want, lease, this.#leasedBy, this.options.leaseMs).then(
      (rows) => {
        this.#claiming = undefined;
        if (this.#claimFailures > 0) {
          this.#claimFailures = 0;
          this.#stats.reconnects++;
        }
        const messages = this.#deliver(this.#overDelivered(rows));
        if (this.#terminated) return;
        if (messages.length > 0) this.#controller!.push(messages);
        if (this.#owed <= 0) return;
        if (rows.length >= want || this.#woken) this.#claim();
        else this.#schedule(this.options.pollInterval);
      },
      (error) => {
        this.#claiming = undefined;
        this.#stats.errors++;
        const lost = isConnectionError(error);
        if (this.#claimFailures === 0 || !lost) this.#failed(error);
        if (lost) this.#claimFailures++;
        this.#schedule(lost ? reconnectDelay(this.#claimFailures, this.options.maxReconnectDelay) : this.options.pollInterval);
      },
    );
  }

  // Rows that ended maxDeliveries deliveries with no ack go to the dead-letter table instead of out.
  #overDelivered(rows: ClaimedRow[]): ClaimedRow[] {
    const max = this.options.maxDeliveries;
    const over = rows.filter((r) => r.deliveries - 1 - r.attempts >= max);
    if (over.length === 0) return rows;
    this.#ref!.undelivered(over).catch(() => undefined);
    return rows.filter((r) => r.deliveries - 1 - r.attempts < max);
  }

  #deliver(rows: ClaimedRow[]): ThroughwayMessage[] {
    const now = Date.now();
    if (this.#terminated) {
      this.#prefetched.push(...rows.map((row) => ({ row, at: now })));
      return [];
    }
    const take = Math.min(this.#owed, rows.length);
    const out = new Array<ThroughwayMessage>(take);
    for (let i = 0; i < take; i++) out[i] = this.#message(rows[i]!);
    for (let i = take; i < rows.length; i++) this.#prefetched.push({ row: rows[i]!, at: now });
    this.#owed -= take;
    this.#stats.claimed += take;
    return out;
  }

  #message(row: ClaimedRow): ThroughwayMessage {
    const data: QueueAckData = { id: row.id, lease: row.lease, attempts: row.attempts };
    let metadata: Record<string, unknown> | undefined;
    if (this.options.metadata) {
      const own = { id: row.id, attempts: row.attempts, deliveries: row.deliveries, lease: row.lease };
      metadata = row.metadata !== null && typeof row.metadata === 'object' && !Array.isArray(row.metadata) ? { ...row.metadata, ...own } : own;
    }
    return createMessage(row.payload, { acknowledger: { module: queueAcknowledger, ref: this.#ref, data }, metadata });
  }

  #schedule(ms: number): void {
    if (this.#timer || this.#draining) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#claim();
    }, ms);
  }

  #clearTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #releasePrefetched(): Promise<void> {
    const rows = this.#prefetched.map((h) => h.row);
    this.#prefetched = [];
    await this.#release(rows);
  }

  // Not fatal if it fails: the leases run out and the rows are claimed again.
  async #release(rows: ClaimedRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#store!.release(rows).catch((error) => this.#failed(error));
  }

  #failed(error: unknown): void {
    try {
      this.options.onError(error);
    } catch {
      // A throwing onError must not stop the producer.
    }
  }
}

/** What {@link postgresQueue} returns: a producer factory for `producer.module`, with counters. */
export interface PostgresQueueSource {
  /** Builds producer `index` (the pipeline calls this once per `producer.concurrency`). */
  (index: number): PostgresQueueProducer;
  readonly options: ResolvedQueueOptions;
  /** The producers built so far. */
  readonly producers: readonly PostgresQueueProducer[];
  /** Counters summed over the producers. */
  stats(): QueueStats;
}

/**
 * A queue in a Postgres table as a pipeline source, shareable by any number of processes on any
 * number of machines. Returns a factory for `producer.module`: each producer claims rows with
 * `FOR UPDATE SKIP LOCKED` and a lease, and its acknowledger deletes them on success (or marks
 * them done), retries failures with a backoff up to `maxAttempts`, then moves them to
 * `<table>_dead`. Options are checked here, before anything opens.
 *
 * Delivery is at-least-once: a row whose lease runs out (the process died, or a message took
 * longer than `leaseMs`) is claimed again. For exactly-once effects when the sink is the same
 * database, see `ackInTransaction`.
 *
 * @example
 * const queue = postgresQueue({ connection: process.env.DATABASE_URL, table: 'orders_queue', maxAttempts: 3 })
 * const pipeline = await Pipeline.start({
 *   name: 'orders',
 *   handlers: new URL('./handlers.js', import.meta.url),
 *   producer: { module: queue },
 *   processors: { default: {} },
 * })
 * // ...
 * await pipeline.stop()
 * console.log(queue.stats()) // { claimed, acked, committed, retried, deadLettered, stale, errors, reconnects }
 */
export function postgresQueue(options: PostgresQueueOptions): PostgresQueueSource {
  const resolved = resolveQueueOptions(options);
  const producers: PostgresQueueProducer[] = [];
  const factory = (index: number): PostgresQueueProducer => {
    const producer = new PostgresQueueProducer(options, index);
    producers.push(producer);
    return producer;
  };
  return Object.assign(factory, {
    options: resolved,
    producers,
    stats(): QueueStats {
      const sum = emptyStats();
      for (const p of producers) {
        const s = p.stats();
        for (const key of Object.keys(sum) as (keyof QueueStats)[]) sum[key] += s[key];
      }
      return sum;
    },
  });
}
