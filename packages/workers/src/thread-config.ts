import type { BatchInfo } from './batch-info.js';
import type { BatchMode } from './message.js';
import type { CallInput, CallOutput } from './runner-types.js';

/** `workerData` of a processor thread. */
export interface ProcessorThreadConfig {
  pipeline: string;
  handlers: string;
  context: unknown;
  processor: string;
  batchers: string[] | null;
  /** BroadcastChannel name on which the coordinator asks every thread to tear down. */
  channel: string;
  /**
   * The thread opens a port of its own for tasks and sends it to the coordinator (a
   * `TaskPortHello` through `parentPort`), which then posts its tasks there instead of through
   * Piscina. Only the main pool's threads: the isolation pool keeps Piscina's path.
   */
  taskPort?: boolean;
}

/** A processor thread's first message to the coordinator: its own port for tasks. */
export interface TaskPortHello {
  throughwayTaskPort: import('node:worker_threads').MessagePort;
  threadId: number;
}

/** A task on a thread's own port, and its answer (`error` when the task threw). */
export interface PortTask {
  id: number;
  task: ProcessorTask;
}

export interface PortAnswer {
  id: number;
  result?: ProcessorTaskResult | DescribeResult;
  error?: unknown;
}

/**
 * A call as it crosses to a processor thread: `datasJson`, when set, is the call's `datas` as one
 * JSON array text (see `datasAsJson`), and `datas` is then empty.
 */
export type WireCall = CallInput & { datasJson?: string };

/** `teardown`: the thread is being retired while the pipeline runs (see `ThreadsRuntime`). */
export type ProcessorTask = { kind: 'describe' } | { kind: 'teardown' } | { kind: 'calls'; calls: WireCall[] };

/** A task's answer: the calls' outputs, with forwarded values encoded into one buffer. */
export interface ProcessorTaskResult {
  outputs: CallOutput[];
  /** The thread that ran the task: the coordinator counts threads that ran `setup`. */
  threadId: number;
  /** Loading the handler module or `setup` failed in this thread. */
  initError?: import('./errors.js').SerializedError;
  buffer?: Uint8Array;
  /** Per call, the offsets of its values (`CallOutput.values`) inside `buffer`. */
  offsets?: Uint32Array[];
  /** The thread's time on the task: callbacks, codec and task overhead (`stats().processors.load`). */
  busyMs?: number;
  /** Some callback returned a promise: `busyMs` includes time spent waiting, not only working. */
  awaited?: true;
  /** A `teardown` task: the error `teardown` threw, as text. */
  teardownError?: string;
}

export interface DescribeResult {
  shape: import('./define-pipeline.js').HandlerShape;
  threadId: number;
}

export interface BatchThreadConfig {
  pipeline: string;
  handlers: string;
  context: unknown;
  batcher: string;
  slot: number;
  /**
   * Shared with the coordinator: `[batches started, batches finished]` in this thread. When the
   * thread dies, it tells which batch was running (the culprit) and which had not started.
   */
  progress?: Int32Array;
  /**
   * The port batches come on (`BatchPortRun`) and their outputs go back on (`BatchPortAnswer`):
   * comlink carries `init` and `teardown`, this port the hot path (comlink's per-call work, an id
   * string and a listener per call, was ~5% of the coordinator's thread with a batch per 100
   * messages).
   */
  port?: import('node:worker_threads').MessagePort;
}

/** Batches to run, one after another, in order. */
export interface BatchPortRun {
  id: number;
  batches: EncodedBatch[];
}

export interface BatchPortAnswer {
  id: number;
  outputs?: EncodedBatchOutput[];
  error?: import('./errors.js').SerializedError;
}

export interface EncodedBatch {
  batcher: string;
  info: BatchInfo;
  buffer: Uint8Array;
  offsets: Uint32Array;
  /** Sparse: indices of the messages in 'flush' mode (the rest are 'bulk'). */
  flush?: number[];
  /** Send the processed values back (some acknowledger of the batch reads `data`). */
  want?: boolean;
}

/** A batch's output as it crosses back: its values, if any, encoded into one moved buffer. */
export type EncodedBatchOutput = Omit<import('./runner-types.js').BatchOutput, 'values'> & { buffer?: Uint8Array; offsets?: Uint32Array };

export interface BatchWorkerApi {
  /** Errors come back as data (`initError`): comlink would drop their code. */
  init(config: BatchThreadConfig): Promise<{ shape?: import('./define-pipeline.js').HandlerShape; initError?: import('./errors.js').SerializedError }>;
  teardown(): Promise<void>;
}
