import { fileURLToPath } from 'node:url';
import { BroadcastChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ThroughwayError, serializeError } from '@throughway/workers';
import type { HandlerShape } from '@throughway/workers';
import { warnSqliteThreadHazard } from '@throughway/workers/internal';
import {
  processorTaskUrl,
  reviveError,
  reviveThrown,
  type DescribeResult,
  concatBatches,
  type EncodedBatch,
  type ProcessorTaskResult,
  type ProcessorThreadConfig,
  datasAsJson,
  type CallInput,
  type PortAnswer,
  type PortTask,
  type ProcessorTask,
  type TaskPortHello,
  type WireCall,
} from '@throughway/workers/internal';
import type { MainMessage } from '../message.js';
import { BatchThread, BatchThreadDeath } from './batch-thread.js';
import { toCallInput } from './call-input.js';
import { PoisonIsolation, isCloneError, isThreadDeath, type ThreadDeath } from './isolation.js';
import type { BatchJob, BatchResult, RuntimeRules, PipelineRuntime, RuntimeOptions, TaskResult } from './runtime.js';
import { SliceRef, slicesOf } from './slice-ref.js';

let nextChannel = 0;

/** A task on a thread's port, waiting for its answer. */
interface PortCall {
  resolve(result: ProcessorTaskResult): void;
  reject(error: unknown): void;
}

/**
 * A processor thread's own port for tasks (see `openTaskPort` in the task module): Piscina starts,
 * replaces and ends the thread, and the coordinator posts tasks here. Each answer is matched to its
 * task by id. When the thread ends (its Worker's 'exit', which comes after its 'error' and after
 * the port closes), `onExit` learns what it held; the error that ended it, if any, is its cause.
 */
class TaskPort {
  readonly threadId: number;
  /** The error that ended the thread (an uncaught exception, running out of memory). */
  cause?: Error;
  #port: MessagePort;
  #calls = new Map<number, PortCall>();
  #nextId = 0;
  #closed = false;

  constructor(hello: TaskPortHello, worker: Worker, onAnswer: () => void, onExit: (port: TaskPort, code: number) => void) {
    this.threadId = hello.threadId;
    this.#port = hello.throughwayTaskPort;
    this.#port.on('message', ({ id, result, error }: PortAnswer) => {
      const call = this.#calls.get(id);
      if (!call) return;
      this.#calls.delete(id);
      // Nothing in flight: the port must not keep the process alive (a pipeline stopped, or idle,
      // with nothing else to wait for, lets it end).
      if (this.#calls.size === 0) this.#port.unref();
      if (error !== undefined) call.reject(reviveThrown(error as Parameters<typeof reviveThrown>[0]));
      else call.resolve(result as ProcessorTaskResult);
      onAnswer();
    });
    this.#port.unref();
    worker.on('error', (error) => (this.cause = error));
    worker.once('exit', (code) => onExit(this, code));
  }

  /** No more tasks: the thread is gone or going. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Tasks posted and not answered yet. */
  get usage(): number {
    return this.#calls.size;
  }

  /** Throws as `postMessage` does (a DataCloneError) when the task cannot be copied. */
  post(task: ProcessorTask, call: PortCall): void {
    const id = this.#nextId++;
    this.#port.postMessage({ id, task } satisfies PortTask);
    if (this.#calls.size === 0) this.#port.ref();
    this.#calls.set(id, call);
  }

  /** The thread is gone: every task it held rejects with `error` (one error: one death). */
  die(error: Error): number {
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    this.close();
    for (const call of calls) call.reject(error);
    return calls.length;
  }

  close(): void {
    this.#closed = true;
    this.#port.close();
  }
}

/**
 * V8 14 (Node 26) made JSON.stringify fast: for a call of 50 ~200-byte objects the main thread
 * spends 0.64-0.91 µs per object on the structured clone and 0.22 µs on JSON.stringify there
 * (0.46 with the post). Measured in a pipeline with maxDemand 100, 4 alternating pairs: main-thread
 * CPU per message 1.34-1.46 -> 1.31-1.42 µs on Node 26, but 1.56-1.70 -> 1.76-1.79 on Node 24
 * (stringify 0.39 µs there, plus the exactness walk), and Node 20's stringify costs ~0.6 µs: the
 * clone path stays below V8 14.
 */
const JSON_WIRE = Number(process.versions.v8.split('.')[0]) >= 14;

/** A call as it goes to a thread: objects as one JSON text when that carries them exactly. */
function toWire(input: CallInput): WireCall {
  if (!JSON_WIRE) return input;
  let datasJson: string | undefined;
  try {
    datasJson = datasAsJson(input.datas);
  } catch {
    // A getter that throws: the structured clone meets it too, and runCalls fails that message alone.
  }
  return datasJson === undefined ? input : { ...input, datas: [], datasJson };
}

/**
 * False if copying the calls into a thread throws: a getter or a proxy trap in some data threw
 * while Piscina posted them. Piscina rejects such a task with the getter's own error, which looks
 * like any other; asked only on the failure path, so the hot path never clones twice.
 */
function postable(inputs: CallInput[]): boolean {
  try {
    structuredClone(inputs);
    return true;
  } catch {
    return false;
  }
}

const MAX_BATCH_RESENDS = 3;

/** Tasks a processor thread holds at once: one running, the next waiting inside the thread. */
const TASKS_PER_THREAD = 2;

/**
 * Packing. A task posted to a thread asleep in its event loop costs the main thread ~16-26 µs of
 * CPU on this 2-vCPU VM (the wake-up), against ~1 µs to a thread that is busy. Piscina spreads
 * tasks over idle threads first, so with cheap handlers every task woke a thread. While the
 * processors' measured work (the handlers' time, summed over tasks) stays under PACK_BELOW_LOAD of
 * one thread, tasks go to the busiest thread that has room instead: one thread stays awake and the
 * others sleep. At SPREAD_FROM_LOAD or more they are spread again, as before. Load is measured over
 * windows of at least LOAD_WINDOW_MS (a window that has seen that much work already spreads at
 * once). Only matters when a slot keeps one task in flight (a short task with a user-set
 * maxDemand, or partitionBy): two tasks per slot fill both threads anyway.
 * Measured with `maxDemand: 100`, no batchers, 3 alternating pairs (README, Issue 10): integers
 * 1.43-2.14M -> 1.70-2.43M msg/s, strings 1.79-2.04M -> 2.04-2.25M, objects 0.65-0.69M -> 0.72-0.87M.
 */
const PACK_BELOW_LOAD = 0.4;
const SPREAD_FROM_LOAD = 0.6;
const LOAD_WINDOW_MS = 100;

/** One call's batches, their values copied into one buffer (see concatBatches). */
function encodeBatches(batcher: string, jobs: BatchJob[]): EncodedBatch[] {
  // Every ref a batch holds came from runCalls: slices of a processor's buffer.
  const encoded = concatBatches(jobs.map((job) => job.refs as SliceRef[]));
  return jobs.map((job, j) => {
    const { buffer, offsets } = encoded[j]!;
    const flush: number[] = [];
    for (let i = 0; i < job.modes.length; i++) if (job.modes[i] === 'flush') flush.push(i);
    const batch: EncodedBatch = { batcher, info: job.info, buffer, offsets, flush: flush.length > 0 ? flush : undefined };
    if (job.want) batch.want = true;
    return batch;
  });
}

/**
 * Processors in a Piscina pool (one thread per processor; Piscina starts, replaces and ends them,
 * tasks go on each thread's own port), batchers in long-lived workers (one per batcher slot, set up
 * over comlink, batches on a port of their own). Processed values come back as byte slices of one
 * buffer per task and go on to the batch worker as they are: the main thread never decodes them.
 */
export class ThreadsRuntime implements PipelineRuntime {
  /**
   * Two tasks in flight per slot let a thread start the next while the main thread handles the
   * last; several calls per task pay the hop (~30 µs) once; demand follows the measured cost.
   */
  static readonly rules: RuntimeRules = Object.freeze({ copiesContext: true, tasksInFlight: 2, bundleCalls: true, adaptiveDemand: true, defaultMaxDemand: 200 });
  readonly rules = ThreadsRuntime.rules;
  #pool: Piscina;
  #config: ProcessorThreadConfig;
  #batchThreads = new Map<string, BatchThread[]>();
  /** Threads that ran a task, hence `setup`: the ones that will answer a teardown. */
  #threadsSeen = new Set<number>();
  #isolation: PoisonIsolation;
  #onThreadDeath: (death: ThreadDeath) => void;
  /** Every task a dead thread held rejects with the same error: one death, counted once. */
  #deaths = new WeakSet<object>();
  #stopping = false;
  /** The threads' own ports for tasks, in the order they came up. */
  #ports: TaskPort[] = [];
  /** Tasks waiting for a thread with room (none has come up yet, or all are full). */
  #waiting: { task: ProcessorTask; call: PortCall }[] = [];
  /** Errors that ended a thread whose port settles its death (`#threadExited`): not idle deaths. */
  #claimed = new WeakSet<object>();
  /** Tasks go to the busiest thread with room (see PACK_BELOW_LOAD), not the idlest. */
  #packed = false;
  #windowStart = performance.now();
  #windowBusyMs = 0;
  #tasksRunning = 0;
  #idleSince = 0;

  constructor(options: RuntimeOptions) {
    this.#config = {
      pipeline: options.pipeline,
      handlers: options.handlers,
      context: options.context,
      processor: 'default',
      batchers: options.batchers.length > 0 ? options.batchers.map((b) => b.name) : null,
      channel: `throughway:${options.pipeline}:${process.pid}:${nextChannel++}`,
    };
    // Batch threads first: a batch worker boots, loads the handler module and runs `setup` as a
    // processor thread does, and the first ack waits for both. Spawned after the pool, it came up
    // last (each `new Worker` holds the main thread for a while). `start()` awaits them.
    for (const b of options.batchers) {
      const threads: BatchThread[] = [];
      for (let slot = 0; slot < b.concurrency; slot++) {
        const config = { pipeline: options.pipeline, handlers: options.handlers, context: options.context, batcher: b.name, slot };
        const thread = new BatchThread(config, options.resourceLimits, (error) => options.onThreadDeath({ error, phase: 'batch' }));
        thread.start().catch(() => undefined); // its failure is reported by start()
        threads.push(thread);
      }
      this.#batchThreads.set(b.name, threads);
    }
    this.#pool = new Piscina({
      // A path, not the URL: Piscina turns a `file:` URL into a path on every task (`new URL`
      // and `fileURLToPath`, ~1 µs of the main thread per task).
      filename: fileURLToPath(processorTaskUrl),
      minThreads: options.concurrency,
      maxThreads: options.concurrency,
      idleTimeout: 2 ** 31 - 1,
      // A second task waits inside the thread, so it starts as soon as the first ends instead of
      // after a round trip through the main thread's event loop.
      concurrentTasksPerWorker: TASKS_PER_THREAD,
      // Handlers may hold sockets and timers; Atomics.wait between tasks would freeze them.
      atomics: 'disabled',
      // Piscina's run/wait-time histograms cost a clock read and a record per task on both
      // sides; nothing reads them (stats().processors.load comes from the task's own clock).
      recordTiming: false,
      workerData: { ...this.#config, taskPort: true } satisfies ProcessorThreadConfig,
      resourceLimits: options.resourceLimits,
      // No `execArgv`: inherited by default, the parent's flags (a loader, --conditions) reach
      // the thread; passed explicitly, V8 flags such as --max-semi-space-size would be refused.
    });
    // Node 24.19-24.21 abort when a thread that used better-sqlite3 12 ends: say so once, up front.
    warnSqliteThreadHazard(options.handlers, options.warn);
    this.#onThreadDeath = options.onThreadDeath;
    // A thread that died holding no task (say, a timer threw after its task ended). Without a
    // listener this 'error' would be re-thrown on the main thread and end the process.
    const onIdleDeath = (error: unknown) => {
      const died = new ThroughwayError('ERR_THROUGHWAY_THREAD_DIED', `a processor thread died between tasks (${(error as Error)?.message ?? String(error)})`, { cause: error });
      options.onThreadDeath({ error: died, phase: 'idle', messages: 0 });
    };
    this.#pool.on('message', (hello: TaskPortHello) => {
      if (!hello?.throughwayTaskPort) return;
      const worker = this.#stopping ? undefined : this.#pool.threads.find((t) => t.threadId === hello.threadId);
      if (!worker) {
        hello.throughwayTaskPort.close();
        return;
      }
      const port = new TaskPort(
        hello,
        worker,
        () => this.#drain(),
        (gone, code) => this.#threadExited(gone, code, onIdleDeath),
      );
      worker.on('error', (error) => this.#claimed.add(error));
      this.#ports.push(port);
      this.#drain();
    });
    // A thread that dies with none of Piscina's own tasks: Piscina emits the error that ended it
    // (before the thread's own 'error' listeners run). A thread with a port reports its death
    // when it exits (`#threadExited`); only a thread without one is reported here.
    this.#pool.on('error', (error: unknown) => {
      setImmediate(() => {
        if (!(typeof error === 'object' && error !== null && this.#claimed.has(error))) onIdleDeath(error);
      });
    });
    this.#isolation = new PoisonIsolation({ config: this.#config, resourceLimits: options.resourceLimits, onDeath: options.onThreadDeath, onIdleDeath, threadsSeen: this.#threadsSeen });
  }

  /** Whether processor tasks are packed onto the busiest thread with room (see PACK_BELOW_LOAD). */
  get packed(): boolean {
    return this.#packed;
  }

  /** The port for the next task: the idlest thread with room, or (packed) the busiest. */
  #pickPort(): TaskPort | undefined {
    let pick: TaskPort | undefined;
    let usage = this.#packed ? -1 : TASKS_PER_THREAD;
    for (const port of this.#ports) {
      const u = port.usage;
      if (u >= TASKS_PER_THREAD) continue;
      if (this.#packed ? u > usage : u < usage) {
        pick = port;
        usage = u;
      }
    }
    return pick;
  }

  /** Posts a task to a thread with room, or queues it (behind any already waiting) until one has. */
  #post(task: ProcessorTask): Promise<ProcessorTaskResult> {
    return new Promise<ProcessorTaskResult>((resolve, reject) => {
      this.#waiting.push({ task, call: { resolve, reject } });
      this.#drain();
    });
  }

  /** Waiting tasks go out, in order, while some thread has room. A task that cannot be copied rejects. */
  #drain(): void {
    while (this.#waiting.length > 0) {
      const port = this.#pickPort();
      if (!port) return;
      const { task, call } = this.#waiting.shift()!;
      try {
        port.post(task, call);
      } catch (error) {
        call.reject(error);
      }
    }
  }

  /**
   * A processor thread ended. The tasks its port held reject with the error that ended it (or its
   * exit code), so that `runCalls` retries their messages one at a time; a thread that held none
   * is an idle death, an exit included (Piscina reported only those an error ended). Piscina
   * starts the replacement, whose port comes with its first message.
   */
  #threadExited(port: TaskPort, code: number, onIdleDeath: (error: unknown) => void): void {
    const at = this.#ports.indexOf(port);
    if (at >= 0) this.#ports.splice(at, 1);
    if (this.#stopping || port.closed) return;
    const error = port.cause ?? new Error(`worker exited with code: ${code}`);
    if (port.die(error) === 0) onIdleDeath(error);
    this.#drain();
  }

  /**
   * A window that spanned an idle pause (no task in flight for a whole window) would read the
   * load of the pause: the first task after it starts a new window.
   */
  #taskStarted(): void {
    if (this.#tasksRunning++ > 0) return;
    const now = performance.now();
    if (now - this.#idleSince >= LOAD_WINDOW_MS) {
      this.#windowStart = now;
      this.#windowBusyMs = 0;
    }
  }

  #taskEnded(): void {
    if (--this.#tasksRunning === 0) this.#idleSince = performance.now();
  }

  #measureLoad(busyMs: number): void {
    this.#windowBusyMs += busyMs;
    const now = performance.now();
    const span = now - this.#windowStart;
    if (span < LOAD_WINDOW_MS) {
      // Already more work in this window than a light load would do in a whole one: spread now.
      if (this.#windowBusyMs >= SPREAD_FROM_LOAD * LOAD_WINDOW_MS) this.#packed = false;
      return;
    }
    const load = this.#windowBusyMs / span;
    if (load < PACK_BELOW_LOAD) this.#packed = true;
    else if (load >= SPREAD_FROM_LOAD) this.#packed = false;
    this.#windowStart = now;
    this.#windowBusyMs = 0;
  }

  async start(): Promise<HandlerShape> {
    // Batch threads boot while the processor threads do (each loads the handler module and runs
    // `setup`; the constructor spawned them): measured ~100 ms less start-up with two batchers on
    // 2 cores. A failure of theirs is reported after the processors' own.
    const batchThreads = [...this.#batchThreads.values()].flat();
    const batchesReady = Promise.all(batchThreads.map((t) => t.start()));
    batchesReady.catch(() => undefined);
    const described = (await this.#pool.run({ kind: 'describe' })) as DescribeResult | ProcessorTaskResult;
    if ('initError' in described && described.initError) throw reviveError(described.initError, 'ERR_THROUGHWAY_SETUP_FAILED');
    const { shape, threadId } = described as DescribeResult;
    this.#threadsSeen.add(threadId);
    await batchesReady;
    return shape;
  }

  async runCalls(_slot: number, calls: MainMessage[][]): Promise<TaskResult> {
    let result: ProcessorTaskResult;
    const inputs = calls.map((call) => toCallInput(call, true));
    this.#taskStarted();
    try {
      result = await this.#post({ kind: 'calls', calls: inputs.map(toWire) });
    } catch (error) {
      this.#taskEnded();
      // Not posted at all: a message that cannot be cloned fails alone, its neighbours run.
      if (!this.#stopping && (isCloneError(error) || !postable(inputs))) return this.#isolation.runCloneable(inputs);
      const died = new ThroughwayError('ERR_THROUGHWAY_THREAD_DIED', `the processor thread died (${(error as Error)?.message ?? String(error)})`, { cause: error });
      if (!isThreadDeath(error, this.#stopping)) throw died;
      // A task waiting behind the dead one in the same thread rejects with the same error.
      if (!this.#deaths.has(error as object)) {
        this.#deaths.add(error as object);
        this.#onThreadDeath({ error: died, phase: 'task', messages: calls.reduce((n, c) => n + c.length, 0) });
      }
      return this.#isolation.run(inputs);
    }
    this.#taskEnded();
    if (result.initError) throw reviveError(result.initError, 'ERR_THROUGHWAY_SETUP_FAILED');
    this.#threadsSeen.add(result.threadId);
    const busyMs = result.busyMs ?? 0;
    this.#measureLoad(busyMs);
    const buffer = result.buffer;
    if (!buffer) return { outputs: result.outputs, refs: [], busyMs };
    return { outputs: result.outputs, refs: result.offsets!.map((offsets) => slicesOf(buffer, offsets)), busyMs };
  }

  runBatches(batcher: string, slot: number, jobs: BatchJob[]): Promise<BatchResult[]> {
    return this.#runBatchesOn(this.#batchThreads.get(batcher)![slot]!, batcher, jobs, 0);
  }

  /**
   * A batch worker that dies fails only the batch it was running. The other batches of the
   * runs it held (not started yet, or done with their answer lost) are sent again to its
   * replacement, in order, one batch per call from then on so that a later death loses no
   * answer; a batch resent MAX_BATCH_RESENDS times fails anyway, so deaths with no culprit
   * (a timer that kills every new thread) cannot loop forever.
   */
  async #runBatchesOn(thread: BatchThread, batcher: string, jobs: BatchJob[], resends: number): Promise<BatchResult[]> {
    try {
      const outputs = await thread.run(encodeBatches(batcher, jobs));
      return outputs.map(({ buffer, offsets, ...out }) => (buffer ? { ...out, refs: slicesOf(buffer, offsets!) } : out));
    } catch (error) {
      if (!(error instanceof BatchThreadDeath)) throw error;
      const died = { kind: 'error' as const, error: serializeError(error) };
      return Promise.all(
        jobs.map(async (job, j) => {
          if (j === error.culprit || resends >= MAX_BATCH_RESENDS) return { statuses: job.refs.map(() => died), busyMs: 0 };
          return (await this.#runBatchesOn(thread, batcher, [job], resends + 1))[0]!;
        }),
      );
    }
  }

  async stop(graceful: boolean): Promise<void> {
    if (graceful) await this.#teardownProcessors();
    this.#stopping = true;
    // Tasks still held reject as Piscina's did when destroyed: `runCalls` sees the stop.
    const stopped = new ThroughwayError('ERR_THROUGHWAY_STOPPED', 'the pipeline stopped before the task ended');
    for (const port of this.#ports.splice(0)) port.die(stopped);
    for (const { call } of this.#waiting.splice(0)) call.reject(stopped);
    const batchThreads = [...this.#batchThreads.values()].flat();
    await Promise.all([this.#pool.destroy(), this.#isolation.destroy(), ...batchThreads.map((t) => t.stop(graceful))]);
  }

  // Piscina cannot address each thread, so teardown is broadcast and each live thread that
  // ran `setup` answers with its id. Bounded: a thread that does not answer is ended anyway.
  async #teardownProcessors(): Promise<void> {
    const live = [...this.#pool.threads.map((t) => t.threadId), ...this.#isolation.threadIds];
    const waiting = new Set(live.filter((id) => this.#threadsSeen.has(id)));
    if (waiting.size === 0) return;
    const channel = new BroadcastChannel(this.#config.channel);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      channel.onmessage = (event) => {
        waiting.delete((event as unknown as { data: { threadId: number } }).data.threadId);
        if (waiting.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      channel.postMessage({ teardown: true });
    });
    channel.close();
  }
}
