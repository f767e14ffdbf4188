import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { createMessage, type Producer, type ProducerController, type ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { NatsAckRef, type NatsAckData, type NatsStats } from './ack-ref.js';
import { natsAcknowledger } from './acknowledger.js';
import { ensureConsumer, openConnection, type Connection } from './connection.js';
import { parseAckSubject, type DeliveryInfo } from './delivery.js';
import { resolveOptions, type NatsJetStreamOptions, type ResolvedOptions } from './options.js';
import { Puller } from './puller.js';
import { natsChannel } from './telemetry.js';

/** 'auto' prefetch never holds more than this many messages beyond the demand. */
const AUTO_PREFETCH_MAX = 10_000;
const decoder = new TextDecoder();

/**
 * One JetStream pull consumer as a pipeline producer: its own connection, its own pull requests.
 *
 * Demand: `handleDemand(n)` adds `n` to what it owes and asks the server for what is owed plus
 * `prefetch`, less what it holds and what is already asked for. Messages arrive on the
 * connection's socket; those owed are pushed to the pipeline once per socket read (a microtask
 * after the first), the rest wait for demand. Nothing is pulled while nothing is owed, so a
 * stalled pipeline holds at most `prefetch` messages here.
 *
 * Usually built by {@link natsJetStream}; direct use is for driving a producer by hand.
 *
 * @example
 * const producer = new NatsJetStreamProducer({ stream: 'ORDERS', consumer: 'workers' })
 * await producer.init({ push: (messages) => handle(messages), pipelineName: 'manual', index: 0, hasTransformer: false })
 * producer.handleDemand(100) // messages arrive through push
 * // ... ack them with natsAcknowledger, then
 * await producer.prepareForDraining()
 * await producer.terminate()
 */
export class NatsJetStreamProducer implements Producer<ThroughwayMessage> {
  readonly index: number;
  readonly options: ResolvedOptions;
  #stats: NatsStats = { received: 0, acked: 0, naked: 0, terminated: 0, deadLettered: 0, renewed: 0, released: 0, reconnects: 0, errors: 0 };
  #connection: Connection | undefined;
  #ref: NatsAckRef | undefined;
  #puller: Puller | undefined;
  #controller: ProducerController | undefined;
  /** Demand received and not yet answered. */
  #owed = 0;
  /** The largest demand owed at once: the 'auto' prefetch. */
  #demandHigh = 0;
  /** Delivered, not yet emitted. */
  #ready: ThroughwayMessage[] = [];
  #flushQueued = false;
  #connected = false;
  #draining = false;
  #drained: Promise<void> | undefined;
  #terminated = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #refusals = 0;
  #reported = new Set<string>();

  /** Checks the options (see {@link natsJetStream}); nothing is opened before `init`. */
  constructor(options: NatsJetStreamOptions, index = 0) {
    this.options = resolveOptions(options);
    this.index = index;
  }

  /** Messages held: delivered and not yet acked (emitted or waiting for demand). */
  get inFlight(): number {
    return this.#ref?.inFlight ?? 0;
  }

  /** The connection (for tests and telemetry); undefined before `init`. */
  get connection(): NatsConnection | undefined {
    return this.#connection?.nc;
  }

  /** Connects, declares or checks the consumer, and opens the pull inbox. */
  async init(controller: ProducerController): Promise<void> {
    if (this.#controller) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'this NATS producer was already initialized');
    this.#controller = controller;
    const o = this.options;
    const connection = await openConnection(o);
    let info;
    try {
      info = await ensureConsumer(connection.jsm, o);
    } catch (error) {
      await connection.nc.close().catch(() => undefined);
      throw error;
    }
    this.#connection = connection;
    this.#connected = true;
    const consumerMax = info.config.max_deliver !== undefined && info.config.max_deliver > 0 ? info.config.max_deliver : Infinity;
    const maxDeliver = Math.min(o.maxDeliver ?? (consumerMax === Infinity ? 5 : consumerMax), consumerMax);
    this.#ref = new NatsAckRef(connection.nc, jetstream(connection.nc), this.#stats, {
      stream: o.stream,
      consumer: o.consumer,
      ackWaitMs: Math.max(1, Math.floor((info.config.ack_wait ?? 30e9) / 1e6)),
      renewAt: o.renewAt,
      maxDeliver,
      onFailure: o.onFailure,
      retryBackoff: o.retryBackoff,
      deadLetter: o.deadLetter,
      onError: (error) => this.#notify(error),
    });
    this.#puller = new Puller({
      nc: connection.nc,
      stream: o.stream,
      consumer: o.consumer,
      expiresMs: o.expiresMs,
      onMessage: (msg) => this.#received(msg),
      onStall: () => this.#pullMore(),
      onStatus: (code, description) => this.#refused(code, description),
    });
    this.#watch(connection);
    if (natsChannel.hasSubscribers) natsChannel.publish({ type: 'connect', stream: o.stream, consumer: o.consumer, server: connection.nc.getServer() });
  }

  handleDemand(demand: number): ThroughwayMessage[] {
    if (!this.#puller) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_STATE', 'handleDemand was called before init (or before its promise settled)');
    this.#owed += demand;
    if (this.#owed > this.#demandHigh) this.#demandHigh = this.#owed;
    const out = this.#take();
    this.#pullMore();
    return out;
  }

  /**
   * Stops pulling (pending requests are cancelled) and gives back (`-NAK`, no delay) what was
   * delivered and not emitted, including what arrives until the server has read the cancel.
   */
  prepareForDraining(): Promise<void> {
    if (this.#draining) return this.#drained ?? Promise.resolve();
    this.#draining = true;
    this.#clearRetry();
    const unsent = this.#ready;
    this.#ready = [];
    this.#ref?.release(unsent.map((m) => (m.acknowledger!.data as NatsAckData).seq));
    this.#drained = this.#puller?.stop() ?? Promise.resolve();
    return this.#drained;
  }

  /** Waits for dead-letter publishes, makes sure every ack reached the server, and closes the connection. */
  async terminate(): Promise<void> {
    if (this.#terminated || !this.#connection) return;
    this.#terminated = true;
    await this.prepareForDraining();
    const nc = this.#connection.nc;
    await this.#ref!.close();
    // A flush is a round trip: when it returns, the server has read every ack sent before it.
    // Bounded, so that a connection that is down does not hold the pipeline's stop.
    if (!nc.isClosed()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([nc.flush().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
    }
    await nc.close().catch(() => undefined);
  }

  /** Counters: received, acked, naked, terminated, dead-lettered, renewed, released, reconnects, errors. */
  stats(): NatsStats {
    return { ...this.#stats };
  }

  #received(msg: Msg): void {
    const info = parseAckSubject(msg.reply);
    if (!info) return; // not a consumer delivery: nothing to ack it with
    this.#stats.received++;
    this.#refusals = 0;
    const seq = this.#ref!.track(msg, info);
    if (this.#draining) return this.#ref!.release([seq]);
    this.#ready.push(this.#message(msg, info, seq));
    if (!this.#flushQueued && this.#owed > 0) {
      this.#flushQueued = true;
      // The client hands over every message of one socket read synchronously: push them together.
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#draining) return;
    const out = this.#take();
    if (out.length > 0) this.#controller!.push(out);
    this.#pullMore();
  }

  #take(): ThroughwayMessage[] {
    const n = Math.min(this.#owed, this.#ready.length);
    if (n === 0) return [];
    this.#owed -= n;
    return n === this.#ready.length ? this.#ready.splice(0) : this.#ready.splice(0, n);
  }

  // Asks for what is owed plus the prefetch, less what is held and already asked for; small
  // top-ups wait until a quarter of the target is missing, so demand arriving 5 at a time does
  // not become one request per 5 messages.
  #pullMore(): void {
    const puller = this.#puller;
    if (!puller || this.#draining || !this.#connected || this.#retryTimer) return;
    const prefetch = this.options.prefetch === 'auto' ? Math.min(AUTO_PREFETCH_MAX, this.#demandHigh) : this.options.prefetch;
    const target = this.#owed + prefetch;
    let want = target - this.#ready.length - puller.pending;
    if (want <= 0 || this.#owed === 0) return;
    if (puller.pending > 0 && want < Math.max(1, Math.floor(target / 4))) return;
    while (want > 0) {
      const n = Math.min(want, this.options.maxPull);
      puller.pull(n);
      want -= n;
    }
  }

  #message(msg: Msg, info: DeliveryInfo, seq: number): ThroughwayMessage {
    // A copy: the client's `data` is a view of the socket's read buffer (a Node Buffer, whose
    // `slice` is a view too), and a view would carry that whole buffer across a thread hop.
    const data = this.options.body === 'bytes' ? new Uint8Array(msg.data) : decoder.decode(msg.data);
    const keys = this.options.metadata;
    let metadata: Record<string, unknown> | undefined;
    if (keys.length > 0) {
      metadata = {};
      for (const key of keys) {
        switch (key) {
          case 'stream': metadata.stream = info.stream; break;
          case 'consumer': metadata.consumer = info.consumer; break;
          case 'subject': metadata.subject = msg.subject; break;
          case 'sequence': metadata.sequence = info.streamSequence; break;
          case 'deliveryCount': metadata.deliveryCount = info.deliveryCount; break;
          case 'redelivered': metadata.redelivered = info.deliveryCount > 1; break;
          case 'timestamp': metadata.timestamp = new Date(Number(info.timestampNanos.slice(0, -6))).toISOString(); break;
          case 'pending': metadata.pending = info.pending; break;
          case 'headers': metadata.headers = plainHeaders(msg); break;
        }
      }
    }
    return createMessage(data, { acknowledger: { module: natsAcknowledger, ref: this.#ref, data: { seq } }, metadata });
  }

  // A refused pull request (a deleted consumer, too many waiting requests): reported once per
  // reason, asked again after the reconnect backoff.
  #refused(code: number, description: string): void {
    this.#report(new ThroughwayError('ERR_THROUGHWAY_NATS_PULL', `pull request to consumer ${this.options.consumer} of stream ${this.options.stream} refused: ${code} ${description}`), `${code} ${description}`);
    if (this.#draining || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pullMore();
    }, this.options.backoff(++this.#refusals));
  }

  #clearRetry(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #watch(connection: Connection): void {
    const { nc } = connection;
    const o = this.options;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.#connected = false;
          this.#report(new ThroughwayError('ERR_THROUGHWAY_NATS_DISCONNECTED', `lost the connection to NATS ${s.server}; reconnecting (messages in flight are acked on the new connection)`), 'disconnect');
          if (natsChannel.hasSubscribers) natsChannel.publish({ type: 'disconnect', stream: o.stream, consumer: o.consumer, server: s.server });
        } else if (s.type === 'reconnect') {
          this.#connected = true;
          this.#stats.reconnects++;
          this.#reported.delete('disconnect');
          connection.resetBackoff();
          // The server forgot the pull requests of the dead connection: ask again.
          this.#puller!.reset();
          this.#pullMore();
          if (natsChannel.hasSubscribers) natsChannel.publish({ type: 'reconnect', stream: o.stream, consumer: o.consumer, server: s.server });
        }
      }
    })();
  }

  // Every failure nobody asked for is counted, and reaches onError once per kind until the
  // producer recovers.
  #report(error: unknown, kind?: string): void {
    this.#stats.errors++;
    if (kind !== undefined) {
      if (this.#reported.has(kind)) return;
      this.#reported.add(kind);
    }
    this.#notify(error);
  }

  #notify(error: unknown): void {
    try {
      this.options.onError(error);
    } catch {
      // A throwing onError must not stop the producer.
    }
  }
}

function plainHeaders(msg: Msg): Record<string, string[]> | undefined {
  const h = msg.headers;
  if (!h) return undefined;
  const out: Record<string, string[]> = {};
  for (const [key, values] of h) out[key] = [...values];
  return out;
}

/** What {@link natsJetStream} returns: a producer factory for `producer.module`, with counters. */
export interface NatsJetStreamSource {
  /** Builds producer `index` (the pipeline calls this once per `producer.concurrency`). */
  (index: number): NatsJetStreamProducer;
  readonly options: ResolvedOptions;
  /** The producers built so far. */
  readonly producers: readonly NatsJetStreamProducer[];
  /** Counters summed over the producers. */
  stats(): NatsStats;
}

/**
 * A NATS JetStream durable pull consumer as a pipeline source. Returns a factory for
 * `producer.module`; each producer (one per `producer.concurrency`) opens its own connection.
 * Options are checked here, before anything connects.
 *
 * Delivery is at-least-once: a message is acked after the pipeline's work on it is done; one
 * whose ack never arrives (a crash, a cut connection past `ack_wait`) is delivered again.
 * Several processes reading the same consumer share its messages, each to one of them.
 *
 * @example
 * const source = natsJetStream({ servers: 'nats://127.0.0.1:4222', stream: 'ORDERS', consumer: 'workers', deadLetter: { subject: 'orders.dead' } })
 * const pipeline = await Pipeline.start({
 *   name: 'orders',
 *   handlers: new URL('./handlers.js', import.meta.url),
 *   producer: { module: source },
 *   processors: { default: { concurrency: 2 } },
 *   batchers: { default: { batchSize: 100 } },
 * })
 * // ...
 * await pipeline.stop()
 * console.log(source.stats()) // { received, acked, naked, terminated, deadLettered, ... }
 */
export function natsJetStream(options: NatsJetStreamOptions): NatsJetStreamSource {
  const resolved = resolveOptions(options);
  const producers: NatsJetStreamProducer[] = [];
  const factory = (index: number): NatsJetStreamProducer => {
    const producer = new NatsJetStreamProducer(options, index);
    producers.push(producer);
    return producer;
  };
  return Object.assign(factory, {
    options: resolved,
    producers,
    stats(): NatsStats {
      const sum: NatsStats = { received: 0, acked: 0, naked: 0, terminated: 0, deadLettered: 0, renewed: 0, released: 0, reconnects: 0, errors: 0 };
      for (const p of producers) {
        const s = p.stats();
        for (const key of Object.keys(sum) as (keyof NatsStats)[]) sum[key] += s[key];
      }
      return sum;
    },
  });
}
