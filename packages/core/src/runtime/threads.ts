import { fileURLToPath } from 'node:url';
import { BroadcastChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ThroughwayError, serializeError } from '@throughway/workers';
import type { HandlerShape } from '@throughway/workers';
import { thrownMessage, warnSqliteThreadHazard } from '@throughway/workers/internal';
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
import { TEARDOWN_TIMEOUT_MS, teardownTimedOut, type BatchJob, type BatchResult, type RuntimeRules, type PipelineRuntime, type RuntimeOptions, type TaskResult, type TeardownFailure } from './runtime.js';
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
  /** Takes no new tasks: ends (its `teardown`, then its thread) once those it holds are answered. */
  retiring = false;
  /** A task was posted here, so the thread loaded the handler module and ran `setup`. */
  setUp = false;

  constructor(
    hello: TaskPortHello,
    worker: Worker,
    readonly pool: Piscina,
    onAnswer: (port: TaskPort) => void,
    onExit: (port: TaskPort, code: number) => void,
  ) {
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
      onAnswer(this);
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
    this.setUp = true;
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

/**
 * The processors' young generation, chosen from the handlers' measured cost. V8 grows a thread's
 * young generation to 16 MB semi-spaces once anything outlives its scavenges (a task's messages
 * always do), and a handler that makes much short-lived garbage then runs 10-15% slower (its
 * garbage no longer fits the caches; a ~50 µs SHA-256 handler ran at 0.84-0.91 of two bare
 * threads, which never grow theirs). A cap of TUNED_YOUNG_MB closes that gap (0.955-0.959) but
 * costs light handlers, whose tasks hold thousands of live messages, a sixth to a third of their
 * rate, and no cap suits both. So the threads start with V8's own sizing and, once synchronous
 * handlers measure HEAVY_MICROS or more a message (over MEASURE_MS of their time, after
 * WARMUP_MS) with little data a message (SMALL_INPUT_BYTES), the pool is replaced once, thread by
 * thread, by one whose young generation is TUNED_YOUNG_MB. A `resourceLimits.maxYoungGenerationSizeMb`
 * set by the user is kept as it is.
 * The time is the thread's wall clock over a task (a descheduled thread reads slower), and a light
 * handler taken for a heavy one loses more than the reverse, so the line is high: the README
 * pattern's handler (~2-4 µs warm) read 13.8 µs over its first 200 ms, the demo's 6.2.
 */
const HEAVY_MICROS = 30;
/**
 * ...and only when each message's task data is small. A task's live data is copied by every
 * scavenge, and a capped young generation holds less of it: a ~90 µs handler that parses an 8 KB
 * JSON document and puts the parsed object as its data ran 30-35% slower at 10 MB (10.9-11.3k
 * against 15.7-17.6k msg/s), keeping a 0.8 KB one 12% slower, while the SHA-256 handler (200-byte
 * strings in, a 64-character hash out) gained 5-10%. So the rule asks for data in of at most
 * SMALL_INPUT_BYTES a message (strings, bytes and numbers: an object's size is not known here, so
 * objects never qualify) and processed values out of at most SMALL_OUTPUT_BYTES (their encoding).
 */
const SMALL_INPUT_BYTES = 1024;
const SMALL_OUTPUT_BYTES = 128;
const TUNED_YOUNG_MB = 10;
const WARMUP_MS = 300;
const MEASURE_MS = 300;
/** Messages after which handlers at under half of HEAVY_MICROS are taken as light without waiting for MEASURE_MS. */
const LIGHT_AFTER_MESSAGES = 10_000;

/** What the young generation's decision adds up (see HEAVY_MICROS), after WARMUP_MS of work. */
interface Tuning {
  warmupMs: number;
  busyMs: number;
  messages: number;
  /** Data in: string lengths, byte lengths, 8 a number. */
  inBytes: number;
  /** Processed values out, encoded (the answer's buffer). */
  outBytes: number;
}

/** A message's data size for the young generation's decision; undefined for objects (not known). */
function dataSize(data: unknown): number | undefined {
  if (typeof data === 'string') return data.length;
  if (typeof data === 'number' || typeof data === 'bigint' || typeof data === 'boolean' || data === null || data === undefined) return 8;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  if (data instanceof ArrayBuffer) return data.byteLength;
  return undefined;
}

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
  #resourceLimits: RuntimeOptions['resourceLimits'];
  #concurrency: number;
  #onIdleDeath: (error: unknown) => void;
  #notice: (message: string) => void;
  #warn: (message: string) => void;
  /** Measuring the handlers' cost, for the young generation (see HEAVY_MICROS); false once decided. */
  #tuning: Tuning | false;
  /** Pools being replaced: each ends once its last thread has retired. */
  #retiringPools = new Set<Piscina>();
  /** Replaced pools being destroyed. */
  #ending: Promise<void>[] = [];
  /** Retired threads running their `teardown`: their pool waits for them. */
  #tearingDown = new Set<TaskPort>();

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
    this.#resourceLimits = options.resourceLimits;
    this.#concurrency = options.concurrency;
    this.#notice = options.notice ?? (() => undefined);
    this.#warn = options.warn;
    this.#tuning = options.resourceLimits?.maxYoungGenerationSizeMb === undefined ? { warmupMs: 0, busyMs: 0, messages: 0, inBytes: 0, outBytes: 0 } : false;
    // Node 24.19-24.21 abort when a thread that used better-sqlite3 12 ends: say so once, up front.
    warnSqliteThreadHazard(options.handlers, options.warn);
    this.#onThreadDeath = options.onThreadDeath;
    // A thread that died holding no task (say, a timer threw after its task ended). Without a
    // listener this 'error' would be re-thrown on the main thread and end the process.
    this.#onIdleDeath = (error: unknown) => {
      const died = new ThroughwayError('ERR_THROUGHWAY_THREAD_DIED', `a processor thread died between tasks (${thrownMessage(error)})`, { cause: error });
      options.onThreadDeath({ error: died, phase: 'idle', messages: 0 });
    };
    this.#pool = this.#startPool(options.resourceLimits);
    this.#isolation = new PoisonIsolation({ config: this.#config, resourceLimits: options.resourceLimits, onDeath: options.onThreadDeath, onIdleDeath: this.#onIdleDeath, threadsSeen: this.#threadsSeen });
  }

  /** A pool of processor threads; each sends its task port with its first message. */
  #startPool(resourceLimits: RuntimeOptions['resourceLimits']): Piscina {
    const pool = new Piscina({
      // A path, not the URL: Piscina turns a `file:` URL into a path on every task (`new URL`
      // and `fileURLToPath`, ~1 µs of the main thread per task).
      filename: fileURLToPath(processorTaskUrl),
      minThreads: this.#concurrency,
      maxThreads: this.#concurrency,
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
      resourceLimits,
      // No `execArgv`: inherited by default, the parent's flags (a loader, --conditions) reach
      // the thread; passed explicitly, V8 flags such as --max-semi-space-size would be refused.
    });
    pool.on('message', (hello: TaskPortHello) => {
      if (!hello?.throughwayTaskPort) return;
      // A thread of a pool being replaced (one Piscina started after a death there) gets no task.
      const worker = this.#stopping || this.#retiringPools.has(pool) ? undefined : pool.threads.find((t) => t.threadId === hello.threadId);
      if (!worker) {
        hello.throughwayTaskPort.close();
        return;
      }
      const port = new TaskPort(
        hello,
        worker,
        pool,
        (answered) => {
          if (answered.retiring && answered.usage === 0) this.#endRetired(answered);
          this.#drain();
        },
        (gone, code) => this.#threadExited(gone, code),
      );
      worker.on('error', (error) => this.#claimed.add(error));
      this.#ports.push(port);
      // A thread of the new pool is up: one of the old pool's takes no more tasks.
      if (this.#retiringPools.size > 0) {
        const old = this.#ports.find((p) => p.pool !== pool && !p.retiring);
        if (old) this.#retire(old);
      }
      this.#drain();
    });
    // A thread that dies with none of Piscina's own tasks: Piscina emits the error that ended it
    // (before the thread's own 'error' listeners run). A thread with a port reports its death
    // when it exits (`#threadExited`); only a thread without one is reported here.
    pool.on('error', (error: unknown) => {
      setImmediate(() => {
        if (!(typeof error === 'object' && error !== null && this.#claimed.has(error))) this.#onIdleDeath(error);
      });
    });
    return pool;
  }

  /**
   * Adds a task's measured cost to the young generation's decision (see HEAVY_MICROS). A task with
   * a callback that returned a promise ends the measuring: its time is not all work.
   */
  #measureCost(result: ProcessorTaskResult, calls: MainMessage[][]): void {
    const tuning = this.#tuning as Tuning;
    if (result.awaited) {
      this.#tuning = false;
      return;
    }
    const busyMs = result.busyMs ?? 0;
    if (tuning.warmupMs < WARMUP_MS) {
      tuning.warmupMs += busyMs;
      return;
    }
    tuning.busyMs += busyMs;
    tuning.outBytes += result.buffer?.byteLength ?? 0;
    for (const call of calls) {
      tuning.messages += call.length;
      for (const m of call) {
        const size = dataSize(m.data);
        if (size === undefined) {
          this.#tuning = false;
          return;
        }
        tuning.inBytes += size;
      }
    }
    if (tuning.busyMs < MEASURE_MS) {
      // Clearly light (a no-op handler takes seconds to add up MEASURE_MS): stop counting.
      if (tuning.messages >= LIGHT_AFTER_MESSAGES && tuning.busyMs * 1000 < (HEAVY_MICROS / 2) * tuning.messages) this.#tuning = false;
      return;
    }
    this.#tuning = false;
    const micros = (tuning.busyMs * 1000) / tuning.messages;
    if (micros < HEAVY_MICROS || this.#stopping) return;
    if (tuning.inBytes > SMALL_INPUT_BYTES * tuning.messages || tuning.outBytes > SMALL_OUTPUT_BYTES * tuning.messages) return;
    this.#retiringPools.add(this.#pool);
    this.#pool = this.#startPool({ ...this.#resourceLimits, maxYoungGenerationSizeMb: TUNED_YOUNG_MB });
    this.#notice(`processor threads replaced by threads with a ${TUNED_YOUNG_MB} MB young generation: handlers measured ${micros.toFixed(0)} µs a message (set processors.default.resourceLimits.maxYoungGenerationSizeMb to choose it yourself)`);
  }

  /** The port takes no new task; it ends once the tasks it holds are answered. */
  #retire(port: TaskPort): void {
    port.retiring = true;
    if (port.usage === 0) this.#endRetired(port);
  }

  /**
   * A retired thread with nothing left to run: its `teardown` runs (a task on its port), then it is
   * no longer waited for at stop. Its pool ends with its last thread.
   */
  #endRetired(port: TaskPort): void {
    const at = this.#ports.indexOf(port);
    if (at < 0) return;
    this.#ports.splice(at, 1);
    this.#tearingDown.add(port);
    const done = (teardownError?: string) => {
      if (teardownError !== undefined) this.#warn(`teardown failed in a processor thread being replaced: ${teardownError}`);
      this.#tearingDown.delete(port);
      this.#threadsSeen.delete(port.threadId);
      port.close();
      this.#endPoolIfRetired(port.pool);
    };
    // Not `#threadsSeen`: the answer to a thread's first task reaches here before `runCalls` adds it.
    if (!port.setUp) return done();
    const failed = (error: unknown) => done(thrownMessage(error));
    try {
      port.post({ kind: 'teardown' }, { resolve: (result) => done(result.teardownError), reject: failed });
    } catch (error) {
      failed(error);
    }
  }

  /** A pool being replaced ends once none of its threads has a task or a `teardown` left to run. */
  #endPoolIfRetired(pool: Piscina): void {
    if (!this.#retiringPools.has(pool) || this.#ports.some((p) => p.pool === pool)) return;
    for (const p of this.#tearingDown) if (p.pool === pool) return;
    this.#retiringPools.delete(pool);
    // Awaited by stop(), so that no thread of it outlives the pipeline.
    this.#ending.push(pool.destroy().catch(() => undefined));
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
      if (u >= TASKS_PER_THREAD || port.retiring) continue;
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
  #threadExited(port: TaskPort, code: number): void {
    const at = this.#ports.indexOf(port);
    if (at >= 0) this.#ports.splice(at, 1);
    if (this.#stopping || port.closed) return;
    const error = port.cause ?? new Error(`worker exited with code: ${code}`);
    if (port.die(error) === 0) this.#onIdleDeath(error);
    this.#endPoolIfRetired(port.pool);
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
      const died = new ThroughwayError('ERR_THROUGHWAY_THREAD_DIED', `the processor thread died (${thrownMessage(error)})`, { cause: error });
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
    if (this.#tuning) this.#measureCost(result, calls);
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

  async stop(graceful: boolean): Promise<TeardownFailure[]> {
    const failures = graceful ? await this.#teardownProcessors() : [];
    this.#stopping = true;
    // Tasks still held reject as Piscina's did when destroyed: `runCalls` sees the stop.
    const stopped = new ThroughwayError('ERR_THROUGHWAY_STOPPED', 'the pipeline stopped before the task ended');
    for (const port of this.#ports.splice(0)) port.die(stopped);
    for (const { call } of this.#waiting.splice(0)) call.reject(stopped);
    const batchThreads = [...this.#batchThreads.values()].flat();
    const pools = [this.#pool, ...this.#retiringPools];
    this.#retiringPools.clear();
    const [, batchFailures] = await Promise.all([
      Promise.all([...pools.map((pool) => pool.destroy()), ...this.#ending, this.#isolation.destroy()]),
      Promise.all(batchThreads.map((t) => t.stop(graceful))),
    ]);
    for (const failure of batchFailures) if (failure) failures.push(failure);
    return failures;
  }

  // Piscina cannot address each thread, so teardown is broadcast and each live thread that
  // ran `setup` answers with its id (and its teardown's error, if it threw). Bounded: a thread
  // that does not answer within TEARDOWN_TIMEOUT_MS is ended anyway, and reported.
  async #teardownProcessors(): Promise<TeardownFailure[]> {
    const live = [...[this.#pool, ...this.#retiringPools].flatMap((pool) => pool.threads.map((t) => t.threadId)), ...this.#isolation.threadIds];
    const waiting = new Set(live.filter((id) => this.#threadsSeen.has(id)));
    const replaced = new Set([...this.#tearingDown].map((port) => port.threadId));
    const failures: TeardownFailure[] = [];
    if (waiting.size === 0) return failures;
    const channel = new BroadcastChannel(this.#config.channel);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, TEARDOWN_TIMEOUT_MS);
      channel.onmessage = (event) => {
        const { threadId, error } = (event as unknown as { data: { threadId: number; error?: string } }).data;
        if (!waiting.delete(threadId)) return;
        // A thread being replaced reports its own teardown (see #endRetired): not twice.
        if (error !== undefined && !replaced.has(threadId)) failures.push({ where: `processor thread ${threadId}`, error });
        if (waiting.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      channel.postMessage({ teardown: true });
    });
    channel.close();
    for (const threadId of waiting) failures.push(teardownTimedOut(`processor thread ${threadId}`));
    return failures;
  }
}
