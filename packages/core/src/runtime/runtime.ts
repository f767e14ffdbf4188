import type { BatchInfo, HandlerShape } from '@throughway/workers';
import type { BatchMode } from '@throughway/workers';
import type { BatchOutput, CallInput, CallOutput } from '@throughway/workers/internal';

/** A processed message on its way to a batch worker; only the runtime knows its form. */
export type PayloadRef = unknown;

export interface TaskResult {
  outputs: CallOutput[];
  /** Per call, one ref per forwarded message (`outputs[c].forward`). */
  refs?: PayloadRef[][];
}

export interface BatchJob {
  info: BatchInfo;
  refs: PayloadRef[];
  modes: BatchMode[];
}

/**
 * The seam between the coordinator and where handlers run. `inline` runs them on the main
 * thread; `threads` in a Piscina pool and batch worker threads. Both run the same runners from
 * `@throughway/workers`, so they share every semantic.
 */
export interface PipelineRuntime {
  readonly kind: 'inline' | 'threads';
  /** Loads the handler module (and runs `setup` where it belongs); reports its callbacks. */
  start(): Promise<HandlerShape>;
  runCalls(slot: number, calls: CallInput[]): Promise<TaskResult>;
  /**
   * Runs batches of one batcher slot one at a time, in the order given, also across calls:
   * a slot may send more before the last call settled. A dead thread rejects the call.
   */
  runBatches(batcher: string, slot: number, jobs: BatchJob[]): Promise<BatchOutput[]>;
  /** `graceful`: run `teardown` in every thread first. Never leaves a thread or handle behind. */
  stop(graceful: boolean): Promise<void>;
}
