import type { Logger } from 'pino';
import type { MainMessage } from '../message.js';
import type { PayloadRef, PipelineRuntime } from '../runtime/runtime.js';
import type { Stats } from '../stats.js';
import type { Acker } from './acker.js';
import type { FailureLog } from './failure-log.js';

/** What a processor needs of a producer stage: to be asked for messages. */
export interface DemandSource {
  ask(slot: number, count: number): void;
}

/** What a processor needs of a batcher: to hand it processed messages. */
export interface BatchSink {
  add(message: MainMessage, ref: PayloadRef): void;
  /**
   * The end of one processor call's messages, due after every `add` of the call: batches
   * holding a 'flush' message are emitted now. They and the batches the call filled wait for
   * `send`.
   */
  endOfChunk(): void;
  /** Sends the batches emitted since the last `send` to their slots (see `ProcessorSlot.#finished`). */
  send(): void;
}

/** Shared, mutable run state: set by the pipeline, read by every stage. */
export interface RunState {
  /** True once `stop()` gave up waiting: late results are ignored, nothing more is acked. */
  halted: boolean;
}

/** What the stages share: the pipeline's runtime, acker, counters and neighbours. */
export interface StageHost {
  readonly pipeline: string;
  readonly runtime: PipelineRuntime;
  readonly acker: Acker;
  readonly stats: Stats;
  readonly logger: Logger;
  readonly failures: FailureLog;
  readonly run: RunState;
  /** The producer stages (filled in when they start). */
  readonly producers: readonly DemandSource[];
  /** `null` when the pipeline has no batchers. */
  readonly batchers: ReadonlyMap<string, BatchSink> | null;
  /**
   * Whether a processor slot may start a task now: room for one more hand-over on every batcher.
   * `taking`: the task's size when it must fit whole, else 1.
   */
  batchersHaveRoom(taking: number): boolean;
  /** Work finished somewhere: processors may resume, drain waiters may re-check. */
  progress(): void;
}
