import { pino, type Logger } from 'pino';
import { ThroughwayError, serializeError, type BatchMode, type ThroughwayMessage } from '@throughway/workers';
import { CallerAcknowledger, type AckResult } from './caller-acknowledger.js';
import { admitMessage, createMessage, type MainMessage } from './message.js';
import { resolveOptions, type PipelineOptions, type RateLimitingOptions, type ResolvedOptions } from './options.js';
import { RUNTIMES } from './runtime/registry.js';
import type { PipelineRuntime } from './runtime/runtime.js';
import { Stats, type PipelineStats } from './stats.js';
import { Acker } from './topology/acker.js';
import { BatcherStage } from './topology/batcher-stage.js';
import { FailureLog, logErr } from './topology/failure-log.js';
import type { RunState, StageHost } from './topology/host.js';
import { ProcessorSlot } from './topology/processor-slot.js';
import { ProducerStage } from './topology/producer-stage.js';
import { RateLimiter, type RateLimitUpdate } from './topology/rate-limiter.js';
import { hashKey } from './topology/hash-key.js';

export interface Topology {
  producers: { name: string; concurrency: number }[];
  /**
   * `tasksInFlight`: tasks a processor slot may have in flight now (the runtime's choice: with a
   * user-set `maxDemand` on threads, one task carrying all the slot holds while tasks are short).
   * `packed`: on threads, tasks go to the busiest processor thread with room instead of the idlest,
   * because the handlers' measured work is light (one thread stays awake, the others sleep).
   */
  processors: { name: string; concurrency: number; runtime: 'inline' | 'threads'; maxDemand: number; minDemand: number; tasksInFlight: number; packed: boolean }[];
  batchers: { name: string; concurrency: number; batchSize: number; batchTimeout: number }[];
}

export interface StopResult {
  /**
   * Messages taken in (admitted from a producer, including those still in a producer stage's
   * buffer) but not acked when the pipeline stopped: 0 after a full drain.
   */
  unacked: number;
}

/** What `Pipeline.run` resolves with: the final figures of a finite run. */
export interface RunResult extends StopResult {
  /** Messages acked, as successful and as failed. */
  totals: { messages: number; successful: number; failed: number };
  /** Failed messages by reason (`Name: message` for errors); at most 100 distinct reasons. */
  failures: Record<string, number>;
  /** From the call of `run` to the end of the stop. */
  wallMs: number;
  /** Acked messages per second of wall time. */
  messagesPerSecond: number;
  stats: PipelineStats;
}

/** `'running'`, `'draining'` (from the `stop()` call) or `'stopped'` (once `stop()` resolved). */
export type PipelineState = 'running' | 'draining' | 'stopped';
type State = PipelineState;

/** One line per death of a processor thread, whatever it held. */
const THREAD_DEATH_LOG = {
  task: 'a processor thread died; it is replaced, and the messages of its task are retried one at a time on a separate thread to find the one that killed it',
  isolated: 'a message killed its processor thread on its own; it is failed with ERR_THROUGHWAY_THREAD_DIED and the thread is replaced',
  idle: 'a processor thread died between tasks; it is replaced',
  batch: 'a batch worker thread died; the batch it was running is failed, the thread is replaced and the batches queued behind it are sent again',
} as const;

/**
 * A running pipeline: producers answering demand, processors running `handleMessage`, batchers
 * running `handleBatch`, and acks back to the source once the work is done.
 *
 * @example
 * const pipeline = await Pipeline.start({
 *   name: 'orders',
 *   handlers: new URL('./handlers.js', import.meta.url),
 *   producer: { module: fromIterable(rows) },
 *   processors: { default: { concurrency: 4 } },
 *   batchers: { sqlite: { batchSize: 500 } },
 * })
 * // ...
 * await pipeline.stop()
 */
export class Pipeline {
  readonly name: string;
  /**
   * Settles once the pipeline has stopped: by itself, when every producer reported through its
   * controller that it is exhausted and every message taken in was acked (then it stops as
   * `stop()` does), or by a call of `stop()`. Resolves with what `stop()` resolves with.
   *
   * @example
   * const pipeline = await Pipeline.start({ ...options, producer: { module: fromIterable(rows) } })
   * const { unacked } = await pipeline.done
   */
  readonly done: Promise<StopResult>;
  #options: ResolvedOptions;
  #logger: Logger;
  #stats = new Stats();
  #acker: Acker;
  #failures: FailureLog;
  #runtime: PipelineRuntime;
  #producers: ProducerStage[] = [];
  #slots: ProcessorSlot[] = [];
  #batchers: Map<string, BatcherStage> | null;
  #limiter?: RateLimiter;
  #caller = new CallerAcknowledger();
  #state: State = 'running';
  #run: RunState = { halted: false };
  #waiters: { check: () => boolean; resolve: () => void }[] = [];
  #stopping?: Promise<StopResult>;
  #pushTo = 0;
  #markStopped!: (result: StopResult) => void;
  #stopped = new Promise<StopResult>((resolve) => (this.#markStopped = resolve));

  private constructor(o: ResolvedOptions) {
    this.#options = o;
    this.name = o.name;
    this.done = this.#stopped;
    this.#logger = o.logger ?? pino({ name: 'throughway', level: 'warn' }, pino.destination({ fd: 2, sync: true }));
    this.#acker = new Acker(o.name, this.#logger, this.#stats);
    this.#failures = new FailureLog(o.name, this.#logger);
    this.#runtime = new RUNTIMES[o.processor.runtime]({
      pipeline: o.name,
      handlers: o.handlers,
      context: o.context,
      concurrency: o.processor.concurrency,
      batchers: o.batchers,
      resourceLimits: o.processor.resourceLimits,
      onThreadDeath: ({ error, phase, messages }) => {
        if (phase !== 'batch') this.#stats.threadDeaths++;
        this.#logger.error({ pipeline: o.name, stage: 'processor', messages, err: logErr(serializeError(error)) }, THREAD_DEATH_LOG[phase]);
      },
      warn: (message) => this.#logger.warn({ pipeline: o.name }, message),
      notice: (message) => this.#logger.info({ pipeline: o.name, stage: 'processor' }, message),
    });
    const batchers = o.batchers.length > 0 ? new Map<string, BatcherStage>() : null;
    this.#batchers = batchers;
    const host = this.#host();
    for (const b of o.batchers) batchers!.set(b.name, new BatcherStage(b, host));
  }

  /**
   * Validates the options, loads the handler module (running `setup` where it belongs), starts
   * the producers and begins pulling. Invalid options reject before anything starts.
   */
  static async start<Context = unknown>(options: PipelineOptions<Context>): Promise<Pipeline> {
    const o = resolveOptions(options);
    const pipeline = new Pipeline(o);
    await pipeline.#start();
    return pipeline;
  }

  /**
   * Runs a finite pipeline to its end: starts it, waits for `done` (every producer exhausted,
   * every message acked) and resolves with the final figures. The process can exit after it.
   *
   * @example
   * const result = await Pipeline.run({
   *   name: 'import',
   *   handlers: new URL('./handlers.js', import.meta.url),
   *   producer: { module: fromIterable(rows) },
   *   processors: { default: {} },
   * })
   * console.log(result.totals, result.failures, result.messagesPerSecond)
   */
  static async run<Context = unknown>(options: PipelineOptions<Context>): Promise<RunResult> {
    const started = performance.now();
    const pipeline = await Pipeline.start(options);
    const { unacked } = await pipeline.done;
    const wallMs = performance.now() - started;
    const stats = pipeline.stats();
    const messages = stats.acks.successful + stats.acks.failed;
    return {
      unacked,
      totals: { messages, successful: stats.acks.successful, failed: stats.acks.failed },
      failures: stats.acks.failures,
      wallMs,
      messagesPerSecond: wallMs > 0 ? messages / (wallMs / 1000) : 0,
      stats,
    };
  }

  async #start(): Promise<void> {
    const o = this.#options;
    const producers: ProducerStage[] = [];
    const initialized: ProducerStage[] = [];
    try {
      const shape = await this.#runtime.start();
      if (o.batchers.length > 0 && !shape.handleBatch) {
        throw new ThroughwayError('ERR_THROUGHWAY_INVALID_HANDLERS', `The pipeline has batchers (${o.batchers.map((b) => b.name).join(', ')}) but the handler module ${o.handlers} has no handleBatch`);
      }
      if (o.producer.rateLimiting) this.#limiter = new RateLimiter(o.producer.rateLimiting, () => this.#producers.forEach((p) => p.requestMore()));
      const partition = o.processor.partitionBy;
      const concurrency = o.processor.concurrency;
      for (let i = 0; i < o.producer.concurrency; i++) {
        const producer = o.producer.factory(i);
        if (producer === null || typeof producer !== 'object' || typeof producer.handleDemand !== 'function') {
          throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Expected \`producer.module\`(${i}) to return a producer (an object with handleDemand)`, { details: { path: 'producer.module' } });
        }
        producers.push(
          new ProducerStage({
            pipeline: o.name,
            index: i,
            producer,
            transformer: o.producer.transformer,
            limiter: this.#limiter,
            logger: this.#logger,
            stats: this.#stats,
            partition: partition ? (m) => hashKey(partition(m)) % concurrency : undefined,
            progress: () => this.#progress(),
            topology: () => this.topology(),
          }),
        );
      }
      this.#producers = producers;
      const host = this.#host();
      for (let s = 0; s < concurrency; s++) {
        this.#slots.push(
          new ProcessorSlot(s, host, {
            maxDemand: o.processor.maxDemand,
            minDemand: o.processor.minDemand,
            ordered: partition !== undefined,
            demandSetByUser: o.processor.demandSetByUser,
          }),
        );
      }
      for (const p of producers) p.connect(this.#slots);
      for (const p of producers) {
        await p.producer.init?.(p.controller());
        initialized.push(p);
      }
    } catch (error) {
      this.#run.halted = true;
      // A producer that did start may hold a connection or a timer that keeps the process alive.
      for (const p of initialized) p.stop();
      await this.#terminateProducers(initialized);
      await this.#runtime.stop(false).catch(() => undefined);
      throw error;
    }
    this.#limiter?.start();
    for (const slot of this.#slots) slot.start();
  }

  #host(): StageHost {
    return {
      pipeline: this.#options.name,
      runtime: this.#runtime,
      acker: this.#acker,
      stats: this.#stats,
      logger: this.#logger,
      failures: this.#failures,
      run: this.#run,
      // The same array the producer stages are put into when the pipeline starts.
      producers: this.#producers,
      batchers: this.#batchers,
      batchersHaveRoom: (taking) => this.#batchersHaveRoom(taking),
      progress: () => this.#progress(),
    };
  }

  #batchersHaveRoom(taking: number): boolean {
    if (this.#batchers === null) return true;
    let upstream = 0;
    let inFlight = 0;
    for (const slot of this.#slots) {
      upstream += slot.maxDemand;
      inFlight += slot.inFlightMessages;
    }
    for (const b of this.#batchers.values()) if (!b.hasRoom(upstream, inFlight, taking)) return false;
    return true;
  }

  #progress(): void {
    if (this.#batchers !== null) for (const slot of this.#slots) slot.pump();
    if (this.#state === 'running' && this.#finished()) void this.stop();
    if (this.#waiters.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  /**
   * Every producer is exhausted and the processors hold nothing: what is left are batches
   * waiting for more, which will not come. `stop()` flushes them and waits for every ack.
   */
  #finished(): boolean {
    const producers = this.#producers;
    return producers.length > 0 && producers.every((p) => p.exhausted && p.buffered === 0 && !p.busy) && this.#slots.every((s) => s.idle);
  }

  #until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ check, resolve }));
  }

  #assertRunning(what: string): void {
    if (this.#state !== 'running') {
      throw new ThroughwayError('ERR_THROUGHWAY_NOT_RUNNING', `Cannot ${what}: the pipeline ${this.name} is ${this.#state}`);
    }
  }

  /**
   * Hands messages to the pipeline directly, bypassing the transformer and the rate limit.
   *
   * @example
   * pipeline.push([createMessage('{"id":1}', { acknowledger: { module: acker, ref: 'manual' } })])
   */
  push(messages: ThroughwayMessage[]): void {
    this.#assertRunning('push');
    if (!Array.isArray(messages)) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', 'push expects a list of messages');
    const admitted = messages.map(admitMessage);
    const stage = this.#producers[this.#pushTo++ % this.#producers.length]!;
    stage.pushMessages(admitted);
  }

  /**
   * Sends one message through the pipeline in 'flush' batch mode and resolves once it is acked.
   * Rejects with `ERR_THROUGHWAY_STOPPED` if the pipeline stops first without acking it.
   *
   * @example
   * const { successful, failed } = await pipeline.testMessage({ id: 1 })
   */
  testMessage(data: unknown, options: { metadata?: Record<string, unknown> } = {}): Promise<AckResult> {
    return this.testBatch([data], { ...options, batchMode: 'flush' });
  }

  /**
   * Sends messages through the pipeline together (batch mode 'bulk' by default) and resolves
   * once every one of them is acked. Rejects with `ERR_THROUGHWAY_STOPPED` if the pipeline
   * stops first without acking them all (a `stop()` that timed out).
   *
   * @example
   * const { successful } = await pipeline.testBatch([1, 2, 3])
   */
  testBatch(datas: unknown[], options: { metadata?: Record<string, unknown>; batchMode?: BatchMode } = {}): Promise<AckResult> {
    this.#assertRunning('testBatch');
    if (!Array.isArray(datas)) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', 'testBatch expects a list of data');
    const mode = options.batchMode ?? 'bulk';
    if (mode !== 'bulk' && mode !== 'flush') throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `Expected \`batchMode\` to be 'bulk' or 'flush', got ${String(mode)}`);
    if (datas.length === 0) return Promise.resolve({ successful: [], failed: [] });
    const { ref, done } = this.#caller.expect(datas.length);
    const messages = datas.map((data) => {
      const m = createMessage(data, { acknowledger: { module: this.#caller, ref }, metadata: { ...options.metadata } }) as MainMessage;
      m.batchMode = mode;
      return m;
    });
    this.#producers[this.#pushTo++ % this.#producers.length]!.pushMessages(messages);
    return done;
  }

  /** The stages and their concurrency (and the demand in force, which threads may adapt). */
  topology(): Topology {
    const o = this.#options;
    const slot = this.#slots[0];
    return {
      producers: [{ name: 'default', concurrency: o.producer.concurrency }],
      processors: [{ name: 'default', concurrency: o.processor.concurrency, runtime: o.processor.runtime, maxDemand: slot?.maxDemand ?? o.processor.maxDemand, minDemand: slot?.minDemand ?? o.processor.minDemand, tasksInFlight: slot?.taskLimit ?? this.#runtime.rules.tasksInFlight, packed: this.#runtime.packed ?? false }],
      batchers: o.batchers.map((b) => ({ name: b.name, concurrency: b.concurrency, batchSize: b.batchSize, batchTimeout: b.batchTimeout })),
    };
  }

  #limiterOrThrow(): RateLimiter {
    if (!this.#limiter) {
      throw new ThroughwayError('ERR_THROUGHWAY_RATE_LIMITING_DISABLED', `Rate limiting is not enabled for the pipeline ${this.name}: set \`producer.rateLimiting\``);
    }
    return this.#limiter;
  }

  /** `{ allowedMessages, interval }` in force; throws when rate limiting is not enabled. */
  getRateLimiting(): RateLimitingOptions {
    return this.#limiterOrThrow().get();
  }

  /**
   * Changes the rate limit from the next interval on, or at once with `reset: true`.
   *
   * @example
   * pipeline.updateRateLimiting({ allowedMessages: 500, reset: true })
   */
  updateRateLimiting(update: RateLimitUpdate): void {
    this.#limiterOrThrow().update(update);
  }

  /** Where the pipeline is in its life: `'running'`, `'draining'` or `'stopped'`. */
  get state(): PipelineState {
    return this.#state;
  }

  /**
   * Resolves once the pipeline has stopped (whoever called `stop()`), with what `stop()` resolved.
   *
   * @example
   * pipeline.whenStopped().then(({ unacked }) => console.log(`stopped, ${unacked} unacked`))
   */
  whenStopped(): Promise<StopResult> {
    return this.#stopped;
  }

  /** Counters per stage, rates over about the last second, and the time since the start. */
  stats(): PipelineStats {
    const s = this.#stats;
    const batchers: PipelineStats['batchers'] = {};
    for (const [name, stage] of this.#batchers ?? []) {
      batchers[name] = { ...s.batcher(name), pending: stage.pendingCount, queued: stage.queuedCount };
    }
    const slot = this.#slots[0];
    const wallMs = performance.now() - s.startedAt;
    return {
      producers: { emitted: s.emitted, transformerErrors: s.transformerErrors, invalidEvents: s.invalidEvents, demanded: s.demanded, buffered: this.#producers.reduce((n, p) => n + p.buffered, 0) },
      processors: {
        calls: s.calls,
        tasks: s.tasks,
        messages: s.processed,
        successful: s.processorSuccessful,
        failed: s.processorFailed,
        inFlight: this.#slots.reduce((n, x) => n + x.inFlightTasks, 0),
        threadDeaths: s.threadDeaths,
        maxDemand: slot?.maxDemand ?? this.#options.processor.maxDemand,
        minDemand: slot?.minDemand ?? this.#options.processor.minDemand,
        load: wallMs > 0 ? Math.min(1, s.busyMs / wallMs / this.#options.processor.concurrency) : 0,
      },
      batchers,
      acks: { successful: s.ackSuccessful, failed: s.ackFailed, errors: s.ackErrors, failures: Object.fromEntries(s.failures) },
      unacked: s.inPipeline,
      elapsedMs: wallMs,
      rates: s.rates(),
      rateLimiting: this.#limiter ? { ...this.#limiter.get(), throttled: this.#limiter.throttled } : null,
    };
  }

  /**
   * Drains and stops: producers stop polling (`prepareForDraining`), nothing new is pulled,
   * what is in flight is processed, pending batches are flushed and acked, producers
   * `terminate`, threads end. Past `timeout` (default `shutdownTimeout`) it stops anyway and
   * reports how many messages were left unacked at the source.
   */
  stop(options: { timeout?: number } = {}): Promise<StopResult> {
    this.#stopping ??= this.#stop(options.timeout ?? this.#options.shutdownTimeout);
    return this.#stopping;
  }

  async #stop(timeout: number): Promise<StopResult> {
    this.#state = 'draining';
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeout)));
    const drained = this.#drain().then(() => false);
    const late = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    this.#run.halted = true;
    this.#failures.flush();
    this.#limiter?.stop();
    for (const b of this.#batchers?.values() ?? []) b.stop();
    for (const p of this.#producers) p.stop();
    await this.#terminateProducers(this.#producers);
    const teardowns = await this.#runtime.stop(!late).catch((error: unknown) => {
      this.#logger.error({ pipeline: this.name, err: logErr(serializeError(error)) }, 'runtime stop failed');
      return [];
    });
    if (teardowns.length > 0) {
      // Once per stop, every thread's failure in it: a connection pool that fails to close in
      // each thread is one problem.
      const where = teardowns.map((f) => `${f.where}: ${f.error}`).join('; ');
      this.#logger.warn({ pipeline: this.name, code: 'ERR_THROUGHWAY_TEARDOWN_FAILED', teardowns }, `teardown failed in ${teardowns.length === 1 ? 'one thread' : `${teardowns.length} threads`} at stop (${where})`);
    }
    this.#state = 'stopped';
    this.#caller.rejectPending(this.name);
    const unacked = this.#stats.inPipeline;
    if (late) this.#logger.warn({ pipeline: this.name, unacked, timeout }, `stop timed out after ${timeout} ms; ${unacked} messages were left unacked at the source`);
    this.#markStopped({ unacked });
    return { unacked };
  }

  async #terminateProducers(stages: readonly ProducerStage[]): Promise<void> {
    for (const p of stages) {
      try {
        await p.producer.terminate?.();
      } catch (error) {
        this.#logger.error({ pipeline: this.name, stage: 'producer', producer: p.index, err: logErr(serializeError(error)) }, 'producer terminate threw');
      }
    }
  }

  async #drain(): Promise<void> {
    for (const p of this.#producers) {
      p.prepareForDraining();
      try {
        await p.producer.prepareForDraining?.();
      } catch (error) {
        this.#logger.error({ pipeline: this.name, stage: 'producer', producer: p.index, err: logErr(serializeError(error)) }, 'producer prepareForDraining threw');
      }
    }
    const processorsIdle = () => this.#producers.every((p) => p.buffered === 0 && !p.busy) && this.#slots.every((s) => s.idle);
    await this.#until(processorsIdle);
    for (const b of this.#batchers?.values() ?? []) b.flushAll();
    await this.#until(() => processorsIdle() && [...(this.#batchers?.values() ?? [])].every((b) => b.idle));
    await this.#acker.settled();
  }
}
