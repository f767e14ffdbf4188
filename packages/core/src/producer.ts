import type { Topology } from './pipeline.js';

/** How a producer emits events outside `handleDemand` (after a poll found rows, say). */
export interface ProducerController {
  push(events: unknown[]): void;
  readonly pipelineName: string;
  readonly index: number;
  /** True when the pipeline has a `transformer`: emit raw events, it builds the messages. */
  readonly hasTransformer: boolean;
  /**
   * The pipeline's stages as `pipeline.topology()` reports them, for a producer that sizes its
   * own buffering from them (as Broadway hands its producers the pipeline's options): a broker
   * prefetch that covers what the processors and batchers hold, say. Absent on a controller
   * built by hand.
   */
  readonly topology?: () => Topology;
  /**
   * The source is used up: nothing more will come. Once every producer said so and every
   * message is acked, `pipeline.done` settles (and `Pipeline.run` returns). Say it after the
   * last events were returned or pushed. Always there on the pipeline's controller; optional so
   * that a controller built by hand (tests, manual driving) need not have it.
   */
  exhausted?(): void;
}

/**
 * A source of events that answers demand. `handleDemand` receives the increment of demand, not
 * the total; it may return fewer events now and push the rest later, but never more in total
 * than it was asked for.
 *
 * @example
 * const producer: Producer<string> = {
 *   handleDemand: (demand) => queue.splice(0, demand),
 * }
 */
export interface Producer<E = unknown> {
  init?(controller: ProducerController): void | Promise<void>;
  handleDemand(demand: number): E[] | Promise<E[]>;
  /** Stop polling: the pipeline is draining. What it still emits is processed. */
  prepareForDraining?(): void | Promise<void>;
  /** After the drain: release connections and timers. */
  terminate?(): void | Promise<void>;
}
