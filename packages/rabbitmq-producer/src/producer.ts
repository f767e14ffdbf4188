import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import { createMessage, type Producer, type ProducerController, type ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { rabbitmqAcknowledger, type RabbitmqAckData } from './acknowledger.js';
import { Backoff } from './backoff.js';
import { emptyStats, type RabbitmqStats } from './ledger.js';
import { selectMetadata } from './metadata.js';
import { derivePrefetch, resolveOptions, type RabbitmqQueueOptions, type ResolvedOptions } from './options.js';
import { closeSession, openSession, redact, type Session } from './session.js';
import { rabbitmqChannels } from './telemetry.js';

/**
 * One consumer on a RabbitMQ queue: its own connection and channel, its own prefetch.
 *
 * The broker pushes up to `prefetch` unacked messages; they wait here until the pipeline asks
 * for them (`handleDemand`), so memory is bounded by the prefetch. A lost connection is
 * reconnected with backoff, trying the URLs in turn; the queue is declared, bound and consumed
 * again, and what was delivered on the dead connection is forgotten without an ack (the broker
 * redelivers it). `prepareForDraining` cancels the consumer (basic.cancel) and gives back what
 * the pipeline has not taken; `terminate` closes the connection.
 *
 * Usually built by {@link rabbitmqQueue}; direct use is for driving a producer by hand.
 *
 * @example
 * const producer = new RabbitmqProducer({ url: 'amqp://guest:guest@127.0.0.1:5672', queue: 'orders' })
 * await producer.init({ push: (messages) => work(messages), pipelineName: 'manual', index: 0, hasTransformer: false })
 * const messages = producer.handleDemand(10)
 * await producer.terminate()
 */
export class RabbitmqProducer implements Producer<ThroughwayMessage> {
  readonly index: number;
  readonly options: ResolvedOptions;
  #stats: RabbitmqStats = emptyStats();
  #controller: ProducerController | undefined;
  #prefetch = 0;
  #connectionName = '';
  #session: Session | undefined;
  /** Received and not yet handed to the pipeline: `#buffer[#head..]`. */
  #buffer: ThroughwayMessage[] = [];
  #head = 0;
  #owed = 0;
  #emitScheduled = false;
  #nextUrl = 0;
  #backoff: Backoff;
  #timer: NodeJS.Timeout | undefined;
  #connecting: Promise<void> | undefined;
  #draining = false;
  #terminated = false;

  /** Checks the options (see {@link rabbitmqQueue}); nothing connects before `init`. */
  constructor(options: RabbitmqQueueOptions, index = 0) {
    this.options = resolveOptions(options);
    this.index = index;
    this.#backoff = new Backoff(this.options.backoff);
  }

  /** The connection's name as the broker lists it (`rabbitmqctl list_connections name`). Set by `init`. */
  get connectionName(): string {
    return this.#connectionName;
  }

  /** The prefetch in force: the option, or the one derived from the pipeline at `init`. */
  get prefetch(): number {
    return this.#prefetch;
  }

  /** True while a connection is up and consuming. */
  get connected(): boolean {
    return this.#session !== undefined;
  }

  /** Counters: delivered, acked, rejected, requeued, released, dropped, ack frames, connects, disconnects. */
  stats(): RabbitmqStats {
    return { ...this.#stats };
  }

  /**
   * Sizes the prefetch and connects. The first round tries every URL once; if none works, init
   * rejects (`ERR_THROUGHWAY_RABBITMQ_CONNECT` or `ERR_THROUGHWAY_RABBITMQ_SETUP`) and the
   * pipeline does not start. Later losses are retried with backoff, forever.
   */
  async init(controller: ProducerController): Promise<void> {
    if (this.#controller) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'this RabbitMQ producer was already initialized');
    this.#controller = controller;
    this.#prefetch = this.options.prefetch ?? derivePrefetch(controller.topology?.());
    this.#connectionName = this.options.connectionName ?? `throughway:${controller.pipelineName}:${this.index}:${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    await this.#connect(true);
  }

  handleDemand(demand: number): ThroughwayMessage[] {
    this.#owed += demand;
    return this.#take();
  }

  /** Cancels the consumer so nothing new arrives, and gives back (requeues) what the pipeline has not taken. */
  async prepareForDraining(): Promise<void> {
    this.#draining = true;
    this.#clearTimer();
    await this.#connecting;
    const session = this.#session;
    if (!session) return;
    try {
      await session.channel.cancel(session.consumerTag);
    } catch {
      // The channel died meanwhile: its messages are redelivered anyway.
    }
    this.#release();
  }

  /** Sends the acks still due and closes the connection. Idempotent; nothing of it keeps the process alive. */
  async terminate(): Promise<void> {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#draining = true;
    this.#clearTimer();
    await this.#connecting;
    const session = this.#session;
    this.#session = undefined;
    if (!session) return;
    this.#release();
    session.ledger.flush();
    await closeSession(session);
    // Whatever was still unacked (a stop that timed out) goes back to the queue with the channel.
    session.ledger.kill();
  }

  // Tries the URLs in turn, starting with the last one that worked (or after the last that failed).
  #connect(first: boolean): Promise<void> {
    const run = (async () => {
      const urls = this.options.urls;
      let lastError: unknown;
      const start = this.#nextUrl;
      for (let k = 0; k < urls.length; k++) {
        const i = (start + k) % urls.length;
        try {
          const session = await openSession(urls[i]!, this.options, this.#prefetch, this.#connectionName, this.#stats, {
            onMessage: (s, m) => this.#received(s, m),
            onLost: (s, reason) => this.#lost(s, reason),
          });
          if (session.lost || this.#draining) {
            // Lost while being set up, or no longer wanted: what it delivered meanwhile waits in
            // the buffer and goes back to the broker with it.
            this.#dropSession();
            await closeSession(session);
            session.ledger.kill();
            if (this.#draining) return;
            throw new ThroughwayError('ERR_THROUGHWAY_RABBITMQ_CONNECT', `the connection to ${redact(urls[i]!)} closed while it was being set up`);
          }
          this.#nextUrl = i;
          this.#session = session;
          this.#backoff.reset();
          this.#stats.connects++;
          if (rabbitmqChannels.connect.hasSubscribers) {
            rabbitmqChannels.connect.publish({ queue: this.options.queue, connectionName: this.#connectionName, url: redact(urls[i]!), prefetch: this.#prefetch, attempt: this.#stats.connects });
          }
          return;
        } catch (error) {
          lastError = error;
          this.#nextUrl = (i + 1) % urls.length;
        }
      }
      if (first) throw lastError;
      this.#report(lastError);
      this.#scheduleReconnect();
    })();
    this.#connecting = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  #received(session: Session, m: ConsumeMessage): void {
    const tag = m.fields.deliveryTag;
    session.ledger.delivered(tag);
    // Deliveries may come before consume-ok, while #connect still awaits the session: with no
    // current session they are buffered, and dropped with the session if it never becomes current.
    if (this.#draining || (this.#session !== undefined && session !== this.#session)) {
      // Arrived after basic.cancel was sent (or on a session being closed): back to the queue.
      session.ledger.reject(tag, true, true);
      session.ledger.flush();
      return;
    }
    const o = this.options;
    // The body is copied out of the socket's read buffer (it is a view into it): a view would
    // keep the whole chunk alive, and a thread hop would clone all of it.
    const body = o.body === 'string' ? m.content.toString('utf8') : new Uint8Array(m.content);
    const data: RabbitmqAckData = { deliveryTag: tag, redelivered: m.fields.redelivered };
    this.#buffer.push(createMessage(body, { acknowledger: { module: rabbitmqAcknowledger, ref: session.ledger, data }, metadata: selectMetadata(o.metadata, m) }));
    if (this.#owed > 0 && !this.#emitScheduled) {
      // One socket read carries many deliveries: hand them over together, once it is parsed.
      this.#emitScheduled = true;
      queueMicrotask(() => {
        this.#emitScheduled = false;
        const messages = this.#take();
        if (messages.length > 0) this.#controller!.push(messages);
      });
    }
  }

  #take(): ThroughwayMessage[] {
    const available = this.#buffer.length - this.#head;
    const n = Math.min(this.#owed, available);
    if (n <= 0) return [];
    const out = this.#buffer.slice(this.#head, this.#head + n);
    this.#head += n;
    this.#owed -= n;
    if (this.#head === this.#buffer.length) {
      this.#buffer = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }

  // Messages received but never handed to the pipeline go back to the queue for any consumer.
  #release(): void {
    const pending = this.#buffer.slice(this.#head);
    this.#buffer = [];
    this.#head = 0;
    if (pending.length === 0) return;
    // Everything buffered came from the current session: a lost one empties the buffer.
    const ledger = this.#session?.ledger;
    if (!ledger) return;
    for (const m of pending) ledger.reject((m.acknowledger!.data as RabbitmqAckData).deliveryTag, true, true);
    ledger.flush();
  }

  #lost(session: Session, reason: string): void {
    if (session !== this.#session) return;
    this.#dropSession();
    const dropped = session.ledger.kill();
    this.#stats.disconnects++;
    if (rabbitmqChannels.disconnect.hasSubscribers) {
      rabbitmqChannels.disconnect.publish({ queue: this.options.queue, connectionName: this.#connectionName, reason, dropped });
    }
    void closeSession(session);
    if (this.#draining) return;
    this.#report(new ThroughwayError('ERR_THROUGHWAY_RABBITMQ_DISCONNECTED', `lost the connection to ${redact(session.url)} (${reason}); ${dropped} unacked messages will be redelivered by the broker; reconnecting`));
    this.#scheduleReconnect();
  }

  // Forgets the current session and what it delivered that the pipeline has not taken: never
  // handed over, and unackable once the session is gone, those are redelivered by the broker.
  #dropSession(): void {
    this.#session = undefined;
    this.#buffer = [];
    this.#head = 0;
  }

  #scheduleReconnect(): void {
    if (this.#draining || this.#timer) return;
    // A ref'd timer: a pipeline waiting for its broker must keep the process alive.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#draining) void this.#connect(false);
    }, this.#backoff.next());
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #report(error: unknown): void {
    try {
      this.options.onError(error);
    } catch {
      // A throwing onError must not stop the reconnect loop.
    }
  }
}

/** What {@link rabbitmqQueue} returns: a producer factory for `producer.module`, with counters. */
export interface RabbitmqQueueSource {
  /** Builds producer `index` (the pipeline calls this once per `producer.concurrency`). */
  (index: number): RabbitmqProducer;
  readonly options: ResolvedOptions;
  /** The producers built so far. */
  readonly producers: readonly RabbitmqProducer[];
  /** Counters summed over the producers. */
  stats(): RabbitmqStats;
}

/**
 * A RabbitMQ queue as a pipeline source. Returns a factory for `producer.module`: each producer
 * (one per `producer.concurrency`) opens its own connection and channel and consumes the queue.
 * Successes are acked in batches (one `multiple` ack per finished run of delivery tags),
 * failures rejected one by one as `onFailure` says. Options are checked here, before anything
 * connects.
 *
 * Delivery is at-least-once: a message whose connection died before its ack is redelivered.
 *
 * @example
 * const queue = rabbitmqQueue({
 *   url: 'amqp://guest:guest@127.0.0.1:5672',
 *   queue: 'orders',
 *   declare: { arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'orders.dlx' } },
 *   onFailure: 'reject',
 * })
 * const pipeline = await Pipeline.start({
 *   name: 'orders',
 *   handlers: new URL('./handlers.js', import.meta.url),
 *   producer: { module: queue },
 *   processors: { default: { concurrency: 2 } },
 *   batchers: { default: { batchSize: 100 } },
 * })
 * // ...
 * await pipeline.stop()
 * console.log(queue.stats()) // { delivered, acked, rejected, ... }
 */
export function rabbitmqQueue(options: RabbitmqQueueOptions): RabbitmqQueueSource {
  const resolved = resolveOptions(options);
  const producers: RabbitmqProducer[] = [];
  const factory = (index: number): RabbitmqProducer => {
    const producer = new RabbitmqProducer(options, index);
    producers.push(producer);
    return producer;
  };
  return Object.assign(factory, {
    options: resolved,
    producers,
    stats(): RabbitmqStats {
      const sum = emptyStats();
      for (const p of producers) {
        const s = p.stats();
        for (const k of Object.keys(sum) as (keyof RabbitmqStats)[]) sum[k] += s[k];
      }
      return sum;
    },
  });
}
