import type { BatchInfo, HandlerShape } from '@throughway/workers';
import type { BatchMode } from '@throughway/workers';
import { thrownMessage, type BatchOutput, type CallOutput, type ProcessedValue } from '@throughway/workers/internal';
import type { MainMessage } from '../message.js';

/**
 * A processed message's `[data, metadata]` as a runtime holds it: the value itself inline, a
 * slice of an encoded buffer on threads. `read()` decodes it; only an acknowledger or a
 * subscriber that reads `message.data` makes anyone call it.
 */
export interface PayloadRef {
  read(): ProcessedValue;
}

export interface TaskResult {
  outputs: CallOutput[];
  /** Per call, one ref per value the call sent back (`outputs[c].sent`, or every message). */
  refs: (PayloadRef[] | undefined)[];
  /** Time the processor spent on the task: callbacks, codec and task overhead. */
  busyMs: number;
}

export interface BatchJob {
  info: BatchInfo;
  refs: PayloadRef[];
  modes: BatchMode[];
  /** Some acknowledger of the batch reads processed data: send the values back. */
  want: boolean;
}

/** A batch's output with its values (if sent back) as refs, one per `sent` index. */
export type BatchResult = Omit<BatchOutput, 'values'> & { refs?: PayloadRef[] };

/**
 * How the coordinator feeds a runtime: each runtime states its own rules, so the coordinator
 * never asks which runtime it has.
 */
export interface RuntimeRules {
  /** `context` is copied into other threads: it must be plain data (checked at start). */
  copiesContext: boolean;
  /** Tasks a processor slot may have in flight without `partitionBy` (with it: 1, for order). */
  tasksInFlight: number;
  /** Several calls per task, to pay a thread hop once for many messages. */
  bundleCalls: boolean;
  /** With no `maxDemand` set, demand may follow the handler's measured cost per message. */
  adaptiveDemand: boolean;
  /** `maxDemand` when the user sets none (the starting point when adaptive). */
  defaultMaxDemand: number;
}

/** What every runtime is built from (a runtime uses what it needs of it). */
export interface RuntimeOptions {
  pipeline: string;
  handlers: string;
  context: unknown;
  /** Processors running at once. */
  concurrency: number;
  batchers: { name: string; concurrency: number }[];
  resourceLimits?: import('node:worker_threads').ResourceLimits;
  /** A processor thread died: once per death, whether it held a task or not. */
  onThreadDeath: (death: import('./isolation.js').ThreadDeath) => void;
  /** A warning for the pipeline's logger (once, at start). */
  warn: (message: string) => void;
  /** Something an operator may want to know that is not a problem (the logger's info level). */
  notice?: (message: string) => void;
}

/**
 * The seam between the coordinator and where handlers run. `inline` runs them on the main
 * thread; `threads` in a Piscina pool and batch worker threads. Both run the same runners from
 * `@throughway/workers`, so they share every semantic.
 */
export interface PipelineRuntime {
  readonly rules: RuntimeRules;
  /** Threads: processor tasks go to the busiest thread with room, not the idlest (see threads.ts). */
  readonly packed?: boolean;
  /** Loads the handler module (and runs `setup` where it belongs); reports its callbacks. */
  start(): Promise<HandlerShape>;
  /** Runs processor calls (each a list of messages, one `prepareMessages`) as one task. */
  runCalls(slot: number, calls: MainMessage[][]): Promise<TaskResult>;
  /**
   * Runs batches of one batcher slot one at a time, in the order given, also across calls:
   * a slot may send more before the last call settled. A dead thread rejects the call.
   */
  runBatches(batcher: string, slot: number, jobs: BatchJob[]): Promise<BatchResult[]>;
  /**
   * `graceful`: run `teardown` in every thread first; resolves with the teardowns that threw or
   * did not finish in time (the pipeline logs them once). Never leaves a thread or handle behind.
   */
  stop(graceful: boolean): Promise<TeardownFailure[]>;
}

/** A `teardown` that threw, or did not finish within {@link TEARDOWN_TIMEOUT_MS}, at `stop()`. */
export interface TeardownFailure {
  /** Where it ran: `processor thread 7`, `batcher "default" slot 0 (thread 9)`, `main thread`. */
  where: string;
  /** The thrown error's message, or that it did not finish. */
  error: string;
}

/** How long `stop()` waits for a thread's `teardown` before ending the thread anyway. */
export const TEARDOWN_TIMEOUT_MS = 5000;

/**
 * The failure of a teardown that did not finish in time: its thread was ended anyway, or (inline,
 * on the main thread, which cannot be ended) `stop()` went on without it.
 */
export function teardownTimedOut(where: string, then = 'the thread was ended anyway'): TeardownFailure {
  return { where, error: `did not finish within ${TEARDOWN_TIMEOUT_MS} ms; ${then}` };
}

/**
 * Waits for one `teardown` (started by `run`) at most TEARDOWN_TIMEOUT_MS: undefined if it
 * settled, else what went wrong, `where` it ran. `then` says what follows a timeout.
 */
export async function boundedTeardown(where: string, run: () => Promise<unknown>, then?: string): Promise<TeardownFailure | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<TeardownFailure>((resolve) => {
    timer = setTimeout(() => resolve(teardownTimedOut(where, then)), TEARDOWN_TIMEOUT_MS);
  });
  const settled = run().then(
    () => undefined,
    (error: unknown) => ({ where, error: thrownMessage(error) }),
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
