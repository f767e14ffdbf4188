/**
 * The Piscina task module of the threads runtime: every processor thread loads it. It keeps the
 * handler module and its `setup` context for the thread's life and runs whole processor calls.
 */
import { performance } from 'node:perf_hooks';
import { BroadcastChannel, MessageChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import { Piscina } from './piscina-move.js';
import type { PipelineHandlers } from './define-pipeline.js';
import { shapeOf } from './define-pipeline.js';
import { initHandlers } from './load-handlers.js';
import { serializeError, thrownMessage } from './errors.js';
import { encodeValues } from './payload-codec.js';
import { runProcessorCall, type ProcessorScope } from './processor-runner.js';
import { isThenable } from './handle-failed.js';
import type { ProcessedValue } from './runner-types.js';
import type { DescribeResult, PortAnswer, PortTask, ProcessorTask, ProcessorTaskResult, ProcessorThreadConfig, TaskPortHello } from './thread-config.js';

const config = workerData as ProcessorThreadConfig;
let scope: Promise<ProcessorScope> | undefined;

async function init(): Promise<ProcessorScope> {
  const { handlers, context } = await initHandlers(config.handlers, config.context, { kind: 'processor' });
  listenForTeardown(handlers, () => context);
  return { handlers, context, processor: config.processor, batchers: config.batchers, crossesThreads: true };
}

let tornDown: Promise<string | undefined> | undefined;

/** Runs `teardown` once, whether the pipeline's stop or a retirement (a `teardown` task) asks first. */
function teardownOnce(handlers: PipelineHandlers, context: () => unknown): Promise<string | undefined> {
  return (tornDown ??= (async () => {
    try {
      await handlers.teardown?.(context());
      return undefined;
    } catch (e) {
      return thrownMessage(e);
    }
  })());
}

function listenForTeardown(handlers: PipelineHandlers, context: () => unknown): void {
  const channel = new BroadcastChannel(config.channel);
  // Unref'd: the channel must not keep a thread alive that Piscina wants to end.
  channel.unref();
  channel.onmessage = async () => {
    const error = await teardownOnce(handlers, context);
    channel.postMessage({ threadId, error });
    channel.close();
  };
}

// Piscina gives this thread up to two tasks at once (concurrentTasksPerWorker: 2) so that the
// second can start as soon as the first ends, and the coordinator does the same on the thread's own
// port. They must still run one after the other, in the order received: with an asynchronous
// handler (or while an async setup runs) the second would interleave with the first and could
// finish first, so a processor of concurrency 1 would handle two calls at once and ack them out of
// order.
let tail: Promise<unknown> = Promise.resolve();

/** A task's answer and the buffers it moves (not copies) to the coordinator. */
interface Answer {
  result: ProcessorTaskResult | DescribeResult;
  transfer: ArrayBuffer[];
}

function enqueue(task: ProcessorTask): Promise<Answer> {
  const answer = tail.then(() => runTask(task));
  tail = answer.catch(() => undefined);
  return answer;
}

/** Piscina's entry: the describe task at start, and every task of the isolation pool. */
export default async function processorTask(task: ProcessorTask): Promise<ProcessorTaskResult | DescribeResult> {
  const { result, transfer } = await enqueue(task);
  if (transfer.length === 0) return result;
  const movable = { [Piscina.transferableSymbol]: transfer, [Piscina.valueSymbol]: result };
  return Piscina.move(movable as unknown as Parameters<typeof Piscina.move>[0]) as unknown as ProcessorTaskResult;
}

/**
 * The thread's own port for tasks. Piscina still starts, replaces and ends the thread; the tasks
 * of a running pipeline come here instead of through its queue, which cost the coordinator ~12-15
 * µs of its thread per task (a task object and an async resource per run, the balancer's list of
 * threads, its bookkeeping of the answer): a fifth of its work with `maxDemand: 100`. The
 * coordinator learns of the port from this first message, before the thread's first task.
 */
function openTaskPort(): void {
  const { port1, port2 } = new MessageChannel();
  port1.on('message', ({ id, task }: PortTask) => {
    enqueue(task).then(
      ({ result, transfer }) => port1.postMessage({ id, result } satisfies PortAnswer, transfer),
      (error: unknown) => port1.postMessage({ id, error: serializeError(error) } satisfies PortAnswer),
    );
  });
  // The thread lives as long as Piscina keeps it: the port must not hold it up on its own.
  port1.unref();
  parentPort!.postMessage({ throughwayTaskPort: port2, threadId } satisfies TaskPortHello, [port2]);
}

if (config.taskPort && parentPort) openTaskPort();

async function runTask(task: ProcessorTask): Promise<Answer> {
  const started = performance.now();
  let current: ProcessorScope;
  try {
    current = await (scope ??= init());
  } catch (error) {
    // Returned, not thrown: a thrown error loses its code on the way to the main thread.
    return { result: { outputs: [], threadId, initError: serializeError(error) }, transfer: [] };
  }
  if (task.kind === 'describe') return { result: { shape: shapeOf(current.handlers), threadId }, transfer: [] };
  if (task.kind === 'teardown') {
    const teardownError = await teardownOnce(current.handlers, () => current.context);
    return { result: teardownError === undefined ? { outputs: [], threadId } : { outputs: [], threadId, teardownError }, transfer: [] };
  }
  const outputs = [];
  let awaited = false;
  for (const call of task.calls) {
    if (call.datasJson !== undefined) call.datas = JSON.parse(call.datasJson) as unknown[];
    const out = runProcessorCall(current, call);
    if (isThenable(out)) {
      awaited = true;
      outputs.push(await out);
    } else outputs.push(out);
  }
  if (outputs.every((out) => out.values === undefined)) {
    const result: ProcessorTaskResult = { outputs, threadId, busyMs: performance.now() - started };
    if (awaited) result.awaited = true;
    return { result, transfer: [] };
  }

  // Values of all calls (forwarded to batchers, or wanted by the acknowledger) go into one
  // buffer so the task answers with one transfer.
  const all: ProcessedValue[] = [];
  const counts: number[] = [];
  for (const out of outputs) {
    const values = out.values ?? [];
    counts.push(values.length);
    for (const v of values) all.push(v);
    delete out.values;
  }
  const encoded = encodeValues(all);
  const offsets: Uint32Array[] = [];
  let at = 0;
  for (const n of counts) {
    offsets.push(encoded.offsets.subarray(at, at + n + 1));
    at += n;
  }
  const result: ProcessorTaskResult = { outputs, threadId, buffer: encoded.buffer, offsets, busyMs: performance.now() - started };
  if (awaited) result.awaited = true;
  // Moved, not copied: the values and their offsets (one ArrayBuffer) are handed to the main
  // thread, which forwards slices of them to the batch workers and decodes a slice only where
  // an acknowledger reads `data`.
  return { result, transfer: [encoded.buffer.buffer as ArrayBuffer] };
}
