import { fileURLToPath } from 'node:url';
import type { ResourceLimits } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ThroughwayError, serializeError, type AckOp, type MessageStatus } from '@throughway/workers';
import {
  FailureCollector,
  OK,
  cell,
  columnOf,
  processorTaskUrl,
  reviveError,
  thrownMessage,
  type CallInput,
  type CallOutput,
  type MessageInit,
  type ProcessorTaskResult,
  type ProcessorThreadConfig,
  type FailureReport,
  type RunnerLog,
} from '@throughway/workers/internal';
import type { PayloadRef, TaskResult } from './runtime.js';
import { SliceRef } from './slice-ref.js';

/** What the threads runtime tells the pipeline when a processor thread dies. */
export interface ThreadDeath {
  error: ThroughwayError;
  /**
   * `task`: a thread died running a task; its messages are retried one at a time.
   * `isolated`: a message retried alone killed its thread; that message fails.
   * `idle`: a thread died holding no task.
   * `batch`: a batch worker thread died; the batch it was running fails, the others are resent.
   */
  phase: 'task' | 'isolated' | 'idle' | 'batch';
  /** Messages the dead processor thread held (for `task`, those of the task that noticed it). */
  messages?: number;
}

/** One message's call, run alone: its output, or the death (or refusal) it caused. */
type Single = { out: CallOutput; ref?: PayloadRef } | { died: MessageStatus; report?: FailureReport };

/** A task Piscina could not post: some data or metadata cannot be structured-cloned. */
export function isCloneError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'DataCloneError';
}

/**
 * A rejection from Piscina that means the thread is gone: it exited, or an error (an uncaught
 * exception, running out of memory) ended it. Not a task that could not be posted (its data
 * cannot be cloned) and not the pool being destroyed by `stop()`.
 */
export function isThreadDeath(error: unknown, stopping: boolean): boolean {
  if (stopping || isCloneError(error)) return false;
  return (error as { name?: unknown } | null)?.name !== 'AbortError';
}

/**
 * Finds the message that killed a processor thread. When a thread dies, the task it held is
 * lost as a whole, innocent messages included; this runs each message of such a task again as
 * a call of its own, one after the other (so a partition's order holds), on a thread of its
 * own that runs one task at a time, so a death there has exactly one possible culprit. A
 * message that kills that thread too is failed with `ERR_THROUGHWAY_THREAD_DIED`; the others
 * get the outcome a normal call gives them. Each message is retried once, so a task of
 * poison only ever costs one death per message.
 *
 * One message per call rather than bisecting: every death costs a thread boot and a `setup`
 * (often a connection), bisecting costs about log2(n) deaths per poison message and runs the
 * innocent ones up to log2(n) times, one per call costs exactly one death per poison message
 * and runs every other message once more; its price, one thread hop per message, is paid
 * only on this rare path.
 */
export class PoisonIsolation {
  #config: ProcessorThreadConfig;
  #resourceLimits?: ResourceLimits;
  #onDeath: (death: ThreadDeath) => void;
  #onIdleDeath: (error: unknown) => void;
  #threadsSeen: Set<number>;
  #pool?: Piscina;
  #stopping = false;

  constructor(options: {
    config: ProcessorThreadConfig;
    resourceLimits?: ResourceLimits;
    onDeath: (death: ThreadDeath) => void;
    onIdleDeath: (error: unknown) => void;
    /** Shared with the runtime: threads that ran `setup` and must answer a teardown. */
    threadsSeen: Set<number>;
  }) {
    this.#config = options.config;
    this.#resourceLimits = options.resourceLimits;
    this.#onDeath = options.onDeath;
    this.#onIdleDeath = options.onIdleDeath;
    this.#threadsSeen = options.threadsSeen;
  }

  /** Ids of the isolation thread, if one is running: it ran `setup` too. */
  get threadIds(): number[] {
    return this.#pool?.threads.map((t) => t.threadId) ?? [];
  }

  /** Runs every message of `calls` as a call of its own and puts the outputs back per call. */
  run(calls: CallInput[]): Promise<TaskResult> {
    return this.#each(calls, (call) => this.#runAlone(call, this.#poolOrStart()));
  }

  /**
   * A task that could not be posted because some message's data or metadata cannot be cloned (a
   * function, a symbol, a class the structured clone refuses): each such message fails alone
   * with `ERR_THROUGHWAY_DATA_NOT_CLONEABLE`, found by cloning it on its own here; the others run
   * one by one, in order, on the isolation thread: should one of them kill its thread, the death
   * has that one culprit, as in `run`.
   */
  runCloneable(calls: CallInput[]): Promise<TaskResult> {
    return this.#each(calls, async (call) => {
      try {
        structuredClone(call);
      } catch (error) {
        const refused = new ThroughwayError('ERR_THROUGHWAY_DATA_NOT_CLONEABLE', `the message's data or metadata cannot be copied into a processor thread (${thrownMessage(error)}); it was not processed`, { cause: error });
        const serialized = serializeError(refused);
        // Refused at the same place for every message, whatever the value: one flood in the log.
        serialized.stack = `${serialized.name}: ${serialized.message}\n    at (dispatch to a processor thread)`;
        return { died: { kind: 'error', error: serialized }, report: { stage: 'dispatch', error: serialized, count: 1 } };
      }
      return this.#runAlone(call, this.#poolOrStart());
    });
  }

  async #each(calls: CallInput[], runOne: (call: CallInput) => Promise<Single>): Promise<TaskResult> {
    const routed = this.#config.batchers !== null;
    const outputs: CallOutput[] = [];
    const refs: PayloadRef[][] = [];
    let busyMs = 0;
    for (const call of calls) {
      const singles: Single[] = [];
      for (let i = 0; i < call.datas.length; i++) singles.push(await runOne(single(call, i)));
      const merged = merge(call, singles, routed);
      outputs.push(merged.out);
      refs.push(merged.refs);
      busyMs += merged.out.busyMs;
    }
    return { outputs, refs, busyMs };
  }

  async #runAlone(call: CallInput, pool: Piscina): Promise<Single> {
    let result: ProcessorTaskResult;
    try {
      result = (await pool.run({ kind: 'calls', calls: [call] })) as ProcessorTaskResult;
    } catch (error) {
      if (!isThreadDeath(error, this.#stopping)) throw error;
      const died = new ThroughwayError('ERR_THROUGHWAY_THREAD_DIED', `the processor thread died running this message alone (${thrownMessage(error)})`, { cause: error });
      this.#onDeath({ error: died, phase: 'isolated', messages: 1 });
      return { died: { kind: 'error', error: serializeError(died) } };
    }
    if (result.initError) throw reviveError(result.initError, 'ERR_THROUGHWAY_SETUP_FAILED');
    this.#threadsSeen.add(result.threadId);
    const out = result.outputs[0]!;
    const offsets = result.offsets?.[0];
    if (!offsets || offsets.length < 2) return { out };
    return { out, ref: new SliceRef(result.buffer!, offsets[0]!, offsets[1]!) };
  }

  // Started on the first death only: a pipeline whose threads never die never pays for it.
  // It stays up until stop(), so that teardown reaches the `setup` it ran.
  #poolOrStart(): Piscina {
    if (this.#pool) return this.#pool;
    this.#pool = new Piscina({
      filename: fileURLToPath(processorTaskUrl),
      // Not 0: with no minimum, Piscina does not replace a dead thread for tasks already queued.
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: 2 ** 31 - 1,
      // One task at a time: a death then has one possible culprit.
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
      recordTiming: false,
      workerData: this.#config,
      resourceLimits: this.#resourceLimits,
    });
    this.#pool.on('error', this.#onIdleDeath);
    return this.#pool;
  }

  async destroy(): Promise<void> {
    this.#stopping = true;
    await this.#pool?.destroy();
  }
}

/** Message `i` of `call` as a call of its own. */
function single(call: CallInput, i: number): CallInput {
  const out: CallInput = { datas: [call.datas[i]] };
  const init = call.inits?.[i];
  if (init) out.inits = [init];
  const columns = call.metadataColumns;
  if (columns) out.metadataColumns = { keys: columns.keys, columns: columns.columns.map((column) => [column[i]]) };
  if (call.want === true || call.want?.includes(i)) out.want = true;
  return out;
}

/** The outputs of a call's messages, each run alone, as the output of the call. */
function merge(call: CallInput, singles: Single[], routed: boolean): { out: CallOutput; refs: PayloadRef[] } {
  const size = singles.length;
  const statuses: MessageStatus[] = new Array(size);
  const batchers: string[] = new Array(size);
  const batchKeys: unknown[] = new Array(size);
  const batchModes: MessageInit['batchMode'][] = new Array(size);
  const sent: number[] = [];
  const refs: PayloadRef[] = [];
  const ackOps: [number, AckOp[]][] = [];
  const logs: RunnerLog[] = [];
  const failures: FailureReport[] = [];
  // Refusals of the same kind, one report with their count (the runners group theirs alike).
  const refused = new FailureCollector();
  let allOk = true;
  let busyMs = 0;
  let failedHandled = 0;
  let threw = false;
  for (let i = 0; i < size; i++) {
    const s = singles[i]!;
    if ('died' in s) {
      allOk = false;
      statuses[i] = s.died;
      if (s.report) refused.add(s.report.stage, s.report.error, s.report.count);
      const init = call.inits?.[i];
      batchers[i] = init?.batcher ?? 'default';
      batchKeys[i] = init?.batchKey ?? 'default';
      batchModes[i] = init?.batchMode ?? 'bulk';
      continue;
    }
    const { out } = s;
    statuses[i] = out.statuses?.[0] ?? OK;
    if (statuses[i]!.kind !== 'ok') allOk = false;
    if (out.batchers) {
      batchers[i] = cell(out.batchers, 0);
      batchKeys[i] = cell(out.batchKeys!, 0);
      batchModes[i] = cell(out.batchModes!, 0);
    }
    if (s.ref) {
      sent.push(i);
      refs.push(s.ref);
    }
    if (out.ackOps) for (const [, ops] of out.ackOps) ackOps.push([i, ops]);
    if (out.logs) logs.push(...out.logs);
    if (out.failures) failures.push(...out.failures);
    if (out.handleFailed) {
      failedHandled += out.handleFailed.size;
      threw ||= out.handleFailed.threw;
    }
    busyMs += out.busyMs;
  }
  const out: CallOutput = { size, busyMs };
  if (!allOk) out.statuses = statuses;
  if (routed && size > 0) {
    out.batchers = columnOf(batchers);
    out.batchKeys = columnOf(batchKeys);
    out.batchModes = columnOf(batchModes as NonNullable<MessageInit['batchMode']>[]);
  }
  if (refs.length > 0 && sent.length !== size) out.sent = sent;
  if (ackOps.length > 0) out.ackOps = ackOps;
  if (failedHandled > 0) out.handleFailed = { size: failedHandled, threw };
  if (logs.length > 0) out.logs = logs;
  failures.push(...(refused.reports() ?? []));
  if (failures.length > 0) out.failures = failures;
  return { out, refs };
}
