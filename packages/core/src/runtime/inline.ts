import type { HandlerShape, PipelineHandlers } from '@throughway/workers';
import { initHandlers, isThenable, runBatch, runProcessorCall, shapeOf, type CallOutput, type ProcessedValue, type ProcessorScope } from '@throughway/workers/internal';
import type { MainMessage } from '../message.js';
import { toCallInput } from './call-input.js';
import { boundedTeardown, type BatchJob, type BatchResult, type RuntimeRules, type PayloadRef, type PipelineRuntime, type RuntimeOptions, type TaskResult, type TeardownFailure } from './runtime.js';

/**
 * Calls on the main thread follow each other in promise callbacks, which run before any timer
 * or I/O. Without a break now and then a busy pipeline would starve everything else on the
 * main thread: batch timeouts, producers' polls, acks written on `setImmediate`.
 */
const YIELD_EVERY_MS = 5;

/** A processed value kept as it is: inline, nothing is encoded. */
class ValueRef implements PayloadRef {
  #value: ProcessedValue;
  constructor(value: ProcessedValue) {
    this.#value = value;
  }
  read(): ProcessedValue {
    return this.#value;
  }
}

/** A task of one call. */
function taskOf(out: CallOutput): TaskResult {
  return { outputs: [out], refs: [refsOf(out)], busyMs: out.busyMs };
}

function refsOf(out: { values?: ProcessedValue[] }): PayloadRef[] | undefined {
  const values = out.values;
  delete out.values;
  return values?.map((v) => new ValueRef(v));
}

/**
 * Runs the handler module on the main thread: for tests and I/O-light handlers. `setup` runs
 * once per pipeline; processed values go to `handleBatch` as they are, without copies.
 */
export class InlineRuntime implements PipelineRuntime {
  /** One call per task, Broadway's demand: a call costs no hop here, so nothing to amortise. */
  static readonly rules: RuntimeRules = Object.freeze({ copiesContext: false, tasksInFlight: 1, bundleCalls: false, adaptiveDemand: false, defaultMaxDemand: 10 });
  readonly rules = InlineRuntime.rules;
  #url: string;
  #context: unknown;
  #batchers: string[] | null;
  #scope!: ProcessorScope;
  #handlers!: PipelineHandlers;

  constructor(options: RuntimeOptions) {
    this.#url = options.handlers;
    this.#context = options.context;
    this.#batchers = options.batchers.length > 0 ? options.batchers.map((b) => b.name) : null;
  }

  async start(): Promise<HandlerShape> {
    const { handlers, context } = await initHandlers(this.#url, this.#context, { kind: 'processor' });
    this.#handlers = handlers;
    this.#scope = { handlers: this.#handlers, context, processor: 'default', batchers: this.#batchers };
    return shapeOf(this.#handlers);
  }

  #lastYield = performance.now();
  #sinceCheck = 0;

  runCalls(_slot: number, calls: MainMessage[][]): Promise<TaskResult> {
    // Reading the clock costs more than a small call's work: look at it every 8th call.
    if ((++this.#sinceCheck & 7) === 0 && performance.now() - this.#lastYield > YIELD_EVERY_MS) {
      return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.#lastYield = performance.now();
        return this.#runAll(calls);
      });
    }
    // One call per task (rules.bundleCalls is false), with no async wrapper and no await of its
    // own: a synchronous handler's call costs one resolved promise (measured: a promise and a
    // microtask less per call of 5 messages is 5-20% more msg/s, see the commit).
    if (calls.length === 1) {
      const out = runProcessorCall(this.#scope, toCallInput(calls[0]!, false));
      return isThenable(out) ? (out as Promise<CallOutput>).then(taskOf) : Promise.resolve(taskOf(out));
    }
    return this.#runAll(calls);
  }

  async #runAll(calls: MainMessage[][]): Promise<TaskResult> {
    const outputs = [];
    const refs = [];
    let busyMs = 0;
    for (const call of calls) {
      const out = await runProcessorCall(this.#scope, toCallInput(call, false));
      refs.push(refsOf(out));
      busyMs += out.busyMs;
      outputs.push(out);
    }
    return { outputs, refs, busyMs };
  }

  #tails = new Map<string, Promise<unknown>>();

  /** Batches of one slot run one at a time, in the order given, as on a batch thread. */
  runBatches(batcher: string, slot: number, jobs: BatchJob[]): Promise<BatchResult[]> {
    const key = `${batcher}\u0000${slot}`;
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(async () => {
      const outputs: BatchResult[] = [];
      for (const job of jobs) outputs.push(await this.#runBatch(batcher, job));
      return outputs;
    });
    this.#tails.set(key, result.catch(() => undefined));
    return result;
  }

  async #runBatch(batcher: string, job: BatchJob): Promise<BatchResult> {
    const items = job.refs.map((ref, i) => {
      const [data, metadata] = ref.read();
      return { data, metadata, batchMode: job.modes[i]! };
    });
    const out: BatchResult & { values?: ProcessedValue[] } = await runBatch(this.#handlers, this.#scope.context, { batcher, info: job.info, items, want: job.want });
    const refs = refsOf(out);
    if (refs) out.refs = refs;
    return out;
  }

  /** Runs `teardown` (when `graceful`), waiting for it at most TEARDOWN_TIMEOUT_MS, as a thread is waited for. */
  async stop(graceful: boolean): Promise<TeardownFailure[]> {
    const teardown = this.#handlers?.teardown;
    if (!graceful || !teardown) return [];
    const failure = await boundedTeardown('main thread', async () => teardown(this.#scope.context), 'stop() went on without it');
    return failure ? [failure] : [];
  }
}
