import type { HandlerShape, PipelineHandlers } from '@throughway/workers';
import { initHandlers, runBatch, runProcessorCall, shapeOf, type BatchOutput, type CallInput, type ProcessorScope } from '@throughway/workers/internal';
import type { BatchJob, PipelineRuntime, TaskResult } from './runtime.js';

type Value = [unknown, Record<string, unknown>];

/**
 * Calls on the main thread follow each other in promise callbacks, which run before any timer
 * or I/O. Without a break now and then a busy pipeline would starve everything else on the
 * main thread: batch timeouts, producers' polls, acks written on `setImmediate`.
 */
const YIELD_EVERY_MS = 5;

/**
 * Runs the handler module on the main thread: for tests and I/O-light handlers. `setup` runs
 * once per pipeline; processed values go to `handleBatch` as they are, without copies.
 */
export class InlineRuntime implements PipelineRuntime {
  readonly kind = 'inline';
  #url: string;
  #context: unknown;
  #batchers: string[] | null;
  #scope!: ProcessorScope;
  #handlers!: PipelineHandlers;

  constructor(options: { handlers: string; context: unknown; batchers: string[] | null }) {
    this.#url = options.handlers;
    this.#context = options.context;
    this.#batchers = options.batchers;
  }

  async start(): Promise<HandlerShape> {
    const { handlers, context } = await initHandlers(this.#url, this.#context, { kind: 'processor' });
    this.#handlers = handlers;
    this.#scope = { handlers: this.#handlers, context, processor: 'default', batchers: this.#batchers };
    return shapeOf(this.#handlers);
  }

  #lastYield = performance.now();
  #sinceCheck = 0;

  async runCalls(_slot: number, calls: CallInput[]): Promise<TaskResult> {
    // Reading the clock costs more than a small call's work: look at it every 8th call.
    if ((++this.#sinceCheck & 7) === 0 && performance.now() - this.#lastYield > YIELD_EVERY_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.#lastYield = performance.now();
    }
    const outputs = [];
    const refs = [];
    for (const call of calls) {
      const out = await runProcessorCall(this.#scope, call);
      refs.push(out.values ?? []);
      delete out.values;
      outputs.push(out);
    }
    return { outputs, refs };
  }

  #tails = new Map<string, Promise<unknown>>();

  /** Batches of one slot run one at a time, in the order given, as on a batch thread. */
  runBatches(batcher: string, slot: number, jobs: BatchJob[]): Promise<BatchOutput[]> {
    const key = `${batcher}\u0000${slot}`;
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(async () => {
      const outputs = [];
      for (const job of jobs) outputs.push(await this.#runBatch(batcher, job));
      return outputs;
    });
    this.#tails.set(key, result.catch(() => undefined));
    return result;
  }

  #runBatch(batcher: string, job: BatchJob): Promise<BatchOutput> {
    const items = job.refs.map((ref, i) => {
      const [data, metadata] = ref as Value;
      return { data, metadata, batchMode: job.modes[i]! };
    });
    return runBatch(this.#handlers, this.#scope.context, { batcher, info: job.info, items });
  }

  async stop(graceful: boolean): Promise<void> {
    if (graceful && this.#handlers?.teardown) await this.#handlers.teardown(this.#scope.context);
  }
}
