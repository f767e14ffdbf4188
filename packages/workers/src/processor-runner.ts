import { performance } from 'node:perf_hooks';
import { describeValue, serializeError } from './errors.js';
import type { PipelineHandlers } from './define-pipeline.js';
import { runHandleFailed, isThenable } from './handle-failed.js';
import { INDEX, handlerMessage, isMessage, type BatchMode, type MessageStatus, type ThroughwayMessage } from './message.js';
import { collectOutcomes } from './outcomes.js';
import { FailureCollector } from './failures.js';
import { columnOf, type CallInput, type CallOutput, type MetadataColumns, type ProcessedValue, type RunnerLog, type Wanted } from './runner-types.js';

/** What a processor call needs besides its messages; fixed for the life of a thread. */
export interface ProcessorScope {
  handlers: PipelineHandlers;
  context: unknown;
  processor: string;
  /** Batcher names, or `null` when the pipeline has none (then routing is ignored). */
  batchers: readonly string[] | null;
  /**
   * The output crosses to another thread (a processor thread's): routing columns of repeating
   * strings go as dictionaries and values grouped by batch (see `columnOf`, `groupedOrder`), which
   * the inline runtime, handing them over as they are, would pay for and not use.
   */
  crossesThreads?: boolean;
}

function metadataRow({ keys, columns }: MetadataColumns, i: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (let k = 0; k < keys.length; k++) row[keys[k]!] = columns[k]![i];
  return row;
}

function failAll(messages: ThroughwayMessage[], status: MessageStatus): void {
  for (const m of messages) m.status = status;
}

/** One processor call while it runs: `messages` is replaced in place as handlers return. */
interface CallRun {
  scope: ProcessorScope;
  call: CallInput;
  started: number;
  size: number;
  messages: ThroughwayMessage[];
  logs: RunnerLog[];
  failures: FailureCollector;
}

/**
 * One processor call with Broadway's semantics: `prepareMessages` over the whole call, then
 * `handleMessage` for each message, then `handleFailed` over the ones that failed. Used as is
 * by the inline runtime and inside every processor thread, so both behave the same.
 *
 * Synchronous as long as the callbacks are: it returns the output itself, and a promise only
 * from the first callback that returns a thenable on (a promise and a microtask per call less for
 * the common synchronous handler, which inline calls of 5 messages feel).
 */
export function runProcessorCall(scope: ProcessorScope, call: CallInput): CallOutput | Promise<CallOutput> {
  const started = performance.now();
  const size = call.datas.length;
  const messages: ThroughwayMessage[] = new Array(size);
  const columns = call.metadataColumns;
  for (let i = 0; i < size; i++) {
    const init = call.inits?.[i];
    const metadata = columns ? metadataRow(columns, i) : init?.metadata;
    messages[i] = init
      ? handlerMessage(i, call.datas[i], metadata, init.batcher ?? 'default', init.batchKey ?? 'default', init.batchMode ?? 'bulk')
      : handlerMessage(i, call.datas[i], metadata, 'default', 'default', 'bulk');
  }
  const run: CallRun = { scope, call, started, size, messages, logs: [], failures: new FailureCollector() };

  const { handlers, context } = scope;
  if (!handlers.prepareMessages) return handleFrom(run, 0);
  let result: unknown;
  try {
    result = handlers.prepareMessages(messages, context);
  } catch (error) {
    prepareThrew(run, error);
    return finish(run);
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then(
      (prepared) => (applyPrepared(run, prepared) ? handleFrom(run, 0) : finish(run)),
      (error: unknown) => {
        prepareThrew(run, error);
        return finish(run);
      },
    );
  }
  return applyPrepared(run, result) ? handleFrom(run, 0) : finish(run);
}

function prepareThrew(run: CallRun, error: unknown): void {
  const serialized = serializeError(error);
  failAll(run.messages, { kind: 'error', error: serialized });
  run.failures.add('prepareMessages', serialized, run.size);
}

/** Takes `prepareMessages`' list if it is one of as many messages; false (all failed) if not. */
function applyPrepared(run: CallRun, result: unknown): boolean {
  const { size } = run;
  try {
    if (!Array.isArray(result) || result.length !== size || !result.every(isMessage)) {
      const reason = `prepareMessages must return a list of ${size} messages, got ${Array.isArray(result) ? `a list of ${result.length}` : describeValue(result)}`;
      failAll(run.messages, { kind: 'failed', reason });
      run.failures.invalidReturn('prepareMessages', reason, size);
      return false;
    }
    // The returned list is positional: its i-th message stands for the i-th one given.
    for (let i = 0; i < size; i++) (result[i] as unknown as Record<symbol, unknown>)[INDEX] = i;
  } catch (error) {
    prepareThrew(run, error);
    return false;
  }
  run.messages = result as ThroughwayMessage[];
  return true;
}

/** `handleMessage` for the messages from `from` on, synchronously until one returns a thenable. */
function handleFrom(run: CallRun, from: number): CallOutput | Promise<CallOutput> {
  for (let i = from; i < run.size; i++) {
    const pending = callHandler(run, i);
    if (pending) return handleAsync(run, i, pending);
  }
  return finish(run);
}

/** The rest of the call once message `i`'s handler returned a thenable: one await per such message. */
async function handleAsync(run: CallRun, i: number, pending: PromiseLike<unknown>): Promise<CallOutput> {
  for (;;) {
    let result: unknown;
    let threw = false;
    try {
      result = await pending;
    } catch (error) {
      handlerThrew(run, i, error);
      threw = true;
    }
    if (!threw) settle(run, i, result);
    let next: PromiseLike<unknown> | undefined;
    while (++i < run.size && !(next = callHandler(run, i)));
    if (!next) return finish(run);
    pending = next;
  }
}

/** Runs `handleMessage` on message `i`: settles it, or returns the thenable the handler returned. */
function callHandler(run: CallRun, i: number): PromiseLike<unknown> | undefined {
  const { handlers, processor, context } = run.scope;
  let result: unknown;
  try {
    result = handlers.handleMessage(processor, run.messages[i]!, context);
  } catch (error) {
    handlerThrew(run, i, error);
    return undefined;
  }
  if (isThenable(result)) return result;
  settle(run, i, result);
  return undefined;
}

function handlerThrew(run: CallRun, i: number, error: unknown): void {
  const serialized = serializeError(error);
  run.messages[i]!.status = { kind: 'error', error: serialized };
  run.failures.add('handleMessage', serialized, 1);
}

/** What message `i`'s handler returned: the message that goes on, or a failure of the one given. */
function settle(run: CallRun, i: number, result: unknown): void {
  const m = run.messages[i]!;
  if (!isMessage(result)) {
    const reason = `expected a Message from handleMessage, got ${describeValue(result)}`;
    m.status = { kind: 'failed', reason };
    run.failures.invalidReturn('handleMessage', reason, 1);
    return;
  }
  (result as unknown as Record<symbol, unknown>)[INDEX] = i;
  const { batchers } = run.scope;
  if (batchers !== null && result.status.kind === 'ok' && !batchers.includes(result.batcher)) {
    result.status = {
      kind: 'failed',
      reason: `unknown batcher ${JSON.stringify(result.batcher)}; the known batchers are ${batchers.map((b) => JSON.stringify(b)).join(', ')}`,
    };
  }
  run.messages[i] = result;
}

/** `handleFailed` over the failed messages (if the module has it), then the call's output. */
function finish(run: CallRun): CallOutput | Promise<CallOutput> {
  const final = run.messages;
  const failed: ThroughwayMessage[] = [];
  for (let i = 0; i < run.size; i++) if (final[i]!.status.kind !== 'ok') failed.push(final[i]!);
  const { handlers, context } = run.scope;
  if (failed.length === 0 || !handlers.handleFailed) return output(run, undefined);
  const failedStatus = failed.map((m) => m.status);
  return runHandleFailed(handlers, failed, final, context, run.logs).then((report) => {
    keepFailed(final, failed, failedStatus);
    return output(run, report);
  });
}

function output(run: CallRun, handleFailed: CallOutput['handleFailed']): CallOutput {
  const out = collect(run.messages, run.scope.batchers !== null, run.scope.crossesThreads === true, run.call.want, run.logs, handleFailed, run.started);
  const reports = run.failures.reports();
  if (reports) out.failures = reports;
  return out;
}

/** A message that failed stays failed whatever `handleFailed` returned for it. */
export function keepFailed(final: ThroughwayMessage[], failed: ThroughwayMessage[], failedStatus: MessageStatus[]): void {
  for (let k = 0; k < failed.length; k++) {
    const index = (failed[k] as unknown as Record<symbol, number>)[INDEX]!;
    const m = final[index]!;
    if (m.status.kind === 'ok') m.status = failedStatus[k]!;
  }
}

function collect(
  final: ThroughwayMessage[],
  routed: boolean,
  crossesThreads: boolean,
  want: Wanted | undefined,
  logs: RunnerLog[],
  handleFailed: CallOutput['handleFailed'],
  started: number,
): CallOutput {
  const size = final.length;
  const { statuses, allOk, ackOps } = collectOutcomes(final);
  const out: CallOutput = { size, busyMs: 0 };
  if (!allOk) out.statuses = statuses as MessageStatus[];
  let order: number[] | undefined;
  if (routed && size > 0) {
    // Almost always one batcher, one key and one mode for the whole call: checked first, so that
    // the per-message arrays are made only when some message differs.
    const { batcher, batchKey, batchMode } = final[0]!;
    let uniform = true;
    for (let i = 1; i < size && uniform; i++) {
      const m = final[i]!;
      uniform = m.batcher === batcher && m.batchKey === batchKey && m.batchMode === batchMode;
    }
    if (uniform) {
      out.batchers = { all: batcher };
      out.batchKeys = { all: batchKey };
      out.batchModes = { all: batchMode };
    } else {
      const batchers: string[] = new Array(size);
      const batchKeys: unknown[] = new Array(size);
      const batchModes: BatchMode[] = new Array(size);
      for (let i = 0; i < size; i++) {
        const m = final[i]!;
        batchers[i] = m.batcher;
        batchKeys[i] = m.batchKey;
        batchModes[i] = m.batchMode;
      }
      out.batchers = columnOf(batchers, crossesThreads);
      out.batchKeys = columnOf(batchKeys, crossesThreads);
      out.batchModes = columnOf(batchModes, crossesThreads);
      if (crossesThreads) order = groupedOrder(batchers, batchKeys);
    }
  }
  collectValues(out, final, (i) => routed && final[i]!.status.kind === 'ok', want, order);
  if (ackOps) out.ackOps = ackOps;
  if (handleFailed) out.handleFailed = handleFailed;
  if (logs.length > 0) out.logs = logs;
  out.busyMs = performance.now() - started;
  return out;
}

/**
 * The call's message indices grouped by batcher and batch key (each group in message order, the
 * groups in the order they first appear), or undefined when the groups do not interleave. Values
 * sent in this order lie in the answer's buffer a batch's run at a time, so that the main thread
 * copies one run per batch into the batch worker's buffer instead of one slice per message
 * (`concatBatches`). Keys are compared as `Map` keys are: an object key is its own group, which
 * at worst leaves its values where they were.
 */
function groupedOrder(batchers: readonly string[], batchKeys: readonly unknown[]): number[] | undefined {
  const size = batchers.length;
  const groups = new Map<string, Map<unknown, number[]>>();
  const lists: number[][] = [];
  let last: number[] | undefined;
  let interleaved = false;
  for (let i = 0; i < size; i++) {
    let byKey = groups.get(batchers[i]!);
    if (byKey === undefined) groups.set(batchers[i]!, (byKey = new Map()));
    let list = byKey.get(batchKeys[i]);
    if (list === undefined) {
      byKey.set(batchKeys[i], (list = []));
      lists.push(list);
    } else if (list !== last) interleaved = true;
    list.push(i);
    last = list;
  }
  if (!interleaved) return undefined;
  const order: number[] = [];
  for (const list of lists) for (const i of list) order.push(i);
  return order;
}

/**
 * Puts `[data, metadata]` into `out.values` for each message that goes on (`needed`) or whose
 * acknowledger wants its processed data (`want`), with their indices in `out.sent` unless they
 * are every message in order. `undefined` entries (not returned by handleBatch) are skipped.
 * `order` (every index once) is the order to send them in; message order if absent.
 */
export function collectValues(
  out: { values?: ProcessedValue[]; sent?: number[] },
  final: readonly (ThroughwayMessage | undefined)[],
  needed: ((i: number) => boolean) | null,
  want: Wanted | undefined,
  order?: readonly number[],
): void {
  const size = final.length;
  if (want === undefined && needed === null) return;
  let wantedAt: Uint8Array | undefined;
  if (want !== undefined && want !== true) {
    wantedAt = new Uint8Array(size);
    for (const i of want) if (i < size) wantedAt[i] = 1;
  }
  const values: ProcessedValue[] = [];
  const sent: number[] = [];
  for (let k = 0; k < size; k++) {
    const i = order === undefined ? k : order[k]!;
    const m = final[i];
    if (!m) continue;
    const wanted = want === true || (wantedAt !== undefined && wantedAt[i] === 1);
    if (!wanted && !(needed?.(i) ?? false)) continue;
    values.push([m.data, m.metadata]);
    sent.push(i);
  }
  if (values.length === 0) return;
  out.values = values;
  if (values.length !== size || order !== undefined) out.sent = sent;
}
