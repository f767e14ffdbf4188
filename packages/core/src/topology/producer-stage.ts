import type { Logger } from 'pino';
import { serializeError, type ThroughwayMessage } from '@throughway/workers';
import { admitMessage, type MainMessage } from '../message.js';
import type { Topology } from '../pipeline.js';
import type { Producer, ProducerController } from '../producer.js';
import type { Stats } from '../stats.js';
import { channels } from '../telemetry.js';
import type { RateLimiter } from './rate-limiter.js';
import { Queue } from './queue.js';
import { logErr } from './failure-log.js';
import type { DemandSource } from './host.js';

/** The side of a processor slot a producer stage hands messages to. */
export interface DemandSink {
  readonly index: number;
  receive(messages: MainMessage[]): void;
}

export interface ProducerStageOptions {
  pipeline: string;
  index: number;
  producer: Producer;
  transformer?: (event: unknown) => ThroughwayMessage;
  limiter?: RateLimiter;
  logger: Logger;
  stats: Stats;
  /** With `partitionBy`: the slot each message must go to. */
  partition?: (message: MainMessage) => number;
  /** An asynchronous `handleDemand` settled, or the producer ran dry: waiters re-check. */
  progress: () => void;
  /** The pipeline's topology, handed to the producer through its controller. */
  topology?: () => Topology;
}

/**
 * Wraps one producer: tracks what each processor slot still wants from it, asks the producer
 * for the increment (within the rate limit), runs the transformer, and hands messages to the
 * slot with the most demand, as GenStage's demand dispatcher does. Messages it cannot place yet
 * wait in its buffer.
 */
export class ProducerStage implements DemandSource {
  readonly index: number;
  readonly producer: Producer;
  #o: ProducerStageOptions;
  #sinks: DemandSink[] = [];
  #demands: number[] = [];
  /** Demand passed to `handleDemand` that the producer has not answered yet. */
  #requested = 0;
  #buffer = new Queue<MainMessage>();
  #draining = false;
  #stopped = false;
  #exhausted = false;
  #calls = 0;

  constructor(options: ProducerStageOptions) {
    this.#o = options;
    this.index = options.index;
    this.producer = options.producer;
  }

  connect(sinks: DemandSink[]): void {
    this.#sinks = sinks;
    this.#demands = sinks.map(() => 0);
  }

  controller(): ProducerController {
    const stage = this;
    return {
      push(events: unknown[]) {
        stage.#emit(events);
      },
      exhausted() {
        if (stage.#exhausted) return;
        stage.#exhausted = true;
        // Said inside handleDemand, before its last events are returned: look after them.
        queueMicrotask(() => stage.#o.progress());
      },
      pipelineName: this.#o.pipeline,
      index: this.index,
      hasTransformer: this.#o.transformer !== undefined,
      topology: this.#o.topology,
    };
  }

  /** The producer said, through its controller, that it will emit nothing more. */
  get exhausted(): boolean {
    return this.#exhausted;
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  /** True while a `handleDemand` call has not returned: its events may still come. */
  get busy(): boolean {
    return this.#calls > 0;
  }

  ask(slot: number, count: number): void {
    this.#demands[slot]! += count;
    this.#dispatch();
    this.requestMore();
  }

  /** Messages given by `pipeline.push`: no transformer, no rate limit. */
  pushMessages(messages: MainMessage[]): void {
    this.#o.stats.admit(messages.length);
    this.#buffer.pushAll(messages);
    this.#dispatch();
  }

  /** Asks the producer for whatever demand is not covered yet. Also called on each refill. */
  requestMore(): void {
    if (this.#draining || this.#stopped) return;
    let total = 0;
    for (const d of this.#demands) total += d;
    let wanted = total - this.#requested - this.buffered;
    if (wanted <= 0) return;
    if (this.#o.limiter) wanted = this.#o.limiter.take(wanted);
    if (wanted <= 0) return;
    this.#requested += wanted;
    this.#o.stats.demanded += wanted;
    this.#callHandleDemand(wanted);
  }

  prepareForDraining(): void {
    this.#draining = true;
  }

  stop(): void {
    this.#stopped = true;
  }

  #callHandleDemand(demand: number): void {
    let result: unknown[] | Promise<unknown[]>;
    try {
      result = this.producer.handleDemand(demand);
    } catch (error) {
      this.#producerError(error);
      return;
    }
    if (Array.isArray(result)) {
      this.#emit(result);
      return;
    }
    if (result && typeof (result as Promise<unknown[]>).then === 'function') {
      this.#calls++;
      (result as Promise<unknown[]>).then(
        (events) => {
          this.#calls--;
          this.#emit(Array.isArray(events) ? events : []);
          this.#o.progress();
        },
        (error) => {
          this.#calls--;
          this.#producerError(error);
          this.#o.progress();
        },
      );
      return;
    }
    this.#producerError(new TypeError(`handleDemand must return a list of events, got ${typeof result}`));
  }

  #producerError(error: unknown): void {
    this.#o.logger.error({ pipeline: this.#o.pipeline, stage: 'producer', producer: this.index, err: logErr(serializeError(error)) }, 'producer handleDemand failed; its demand is asked again later');
    // The demand it failed to answer is released, so a later ask can retry it.
    this.#requested = 0;
  }

  #emit(events: unknown[]): void {
    const n = events.length;
    this.#requested = Math.max(0, this.#requested - n);
    if (n === 0) return;
    const { transformer, stats, logger } = this.#o;
    for (let i = 0; i < n; i++) {
      const event = events[i];
      let message: MainMessage;
      try {
        message = admitMessage(transformer ? transformer(event) : event);
      } catch (error) {
        if (transformer) stats.transformerErrors++;
        else stats.invalidEvents++;
        logger.error({ pipeline: this.#o.pipeline, stage: 'producer', err: logErr(serializeError(error)), event: safeEvent(event), producer: this.index }, transformer ? 'transformer threw; the event is dropped' : 'producer emitted something that is not a message; it is dropped');
        if (channels.transformerError.hasSubscribers) {
          channels.transformerError.publish({ pipeline: this.#o.pipeline, event, error: serializeError(error) });
        }
        continue;
      }
      this.#buffer.push(message);
      stats.admit(1);
    }
    stats.emitted += n;
    this.#dispatch();
  }

  #dispatch(): void {
    if (this.buffered === 0) return;
    if (this.#o.partition) return this.#dispatchPartitioned();
    const demands = this.#demands;
    while (this.buffered > 0) {
      let best = -1;
      let most = 0;
      for (let s = 0; s < demands.length; s++) {
        if (demands[s]! > most) {
          most = demands[s]!;
          best = s;
        }
      }
      if (best < 0) break;
      const chunk = this.#buffer.take(most);
      demands[best]! -= chunk.length;
      this.#sinks[best]!.receive(chunk);
    }
  }

  // With partitionBy every message has one slot; demand is pooled so that a busy partition
  // does not hold back the others. Producers still only emit what was asked, which bounds it.
  #dispatchPartitioned(): void {
    const demands = this.#demands;
    let pooled = 0;
    for (const d of demands) pooled += d;
    const count = Math.min(pooled, this.buffered);
    if (count === 0) return;
    const bySlot = new Map<number, MainMessage[]>();
    for (const m of this.#buffer.take(count)) {
      const slot = this.#o.partition!(m);
      let list = bySlot.get(slot);
      if (!list) bySlot.set(slot, (list = []));
      list.push(m);
    }
    let left = count;
    for (let s = 0; s < demands.length && left > 0; s++) {
      const take = Math.min(demands[s]!, left);
      demands[s]! -= take;
      left -= take;
    }
    for (const [slot, list] of bySlot) this.#sinks[slot]!.receive(list);
  }
}

function safeEvent(event: unknown): unknown {
  if (typeof event === 'string') return event.length > 200 ? event.slice(0, 200) + '...' : event;
  return event;
}
