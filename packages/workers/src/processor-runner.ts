import { performance } from 'node:perf_hooks';
import { describeValue, serializeError } from './errors.js';
import type { PipelineHandlers } from './define-pipeline.js';
import { runHandleFailed, isThenable } from './handle-failed.js';
import { INDEX, handlerMessage, isMessage, type BatchMode, type MessageStatus, type ThroughwayMessage } from './message.js';
import { collectOutcomes } from './outcomes.js';
import { columnOf, type CallInput, type CallOutput, type MetadataColumns, type RunnerLog } from './runner-types.js';

/** What a processor call needs besides its messages; fixed for the life of a thread. */
export interface ProcessorScope {
  handlers: PipelineHandlers;
  context: unknown;
  processor: string;
  /** Batcher names, or `null` when the pipeline has none (then routing is ignored). */
  batchers: readonly string[] | null;
}

function metadataRow({ keys, columns }: MetadataColumns, i: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (let k = 0; k < keys.length; k++) row[keys[k]!] = columns[k]![i];
  return row;
}

function failAll(messages: ThroughwayMessage[], status: MessageStatus): void {
  for (const m of messages) m.status = status;
}

/**
 * One processor call with Broadway's semantics: `prepareMessages` over the whole call, then
 * `handleMessage` for each message, then `handleFailed` over the ones that failed. Used as is
 * by the inline runtime and inside every processor thread, so both behave the same.
 */
export async function runProcessorCall(scope: ProcessorScope, call: CallInput): Promise<CallOutput> {
  const started = performance.now();
  const { handlers, context, processor, batchers } = scope;
  const size = call.datas.length;
  const logs: RunnerLog[] = [];
  let messages: ThroughwayMessage[] = new Array(size);
  const columns = call.metadataColumns;
  for (let i = 0; i < size; i++) {
    const init = call.inits?.[i];
    const metadata = columns ? metadataRow(columns, i) : init?.metadata;
    messages[i] = init
      ? handlerMessage(i, call.datas[i], metadata, init.batcher ?? 'default', init.batchKey ?? 'default', init.batchMode ?? 'bulk')
      : handlerMessage(i, call.datas[i], metadata, 'default', 'default', 'bulk');
  }

  let prepared = true;
  if (handlers.prepareMessages) {
    try {
      let result: unknown = handlers.prepareMessages(messages, context);
      if (isThenable(result)) result = await result;
      if (!Array.isArray(result) || result.length !== size || !result.every(isMessage)) {
        prepared = false;
        failAll(messages, {
          kind: 'failed',
          reason: `prepareMessages must return a list of ${size} messages, got ${Array.isArray(result) ? `a list of ${result.length}` : describeValue(result)}`,
        });
      } else {
        // The returned list is positional: its i-th message stands for the i-th one given.
        for (let i = 0; i < size; i++) (result[i] as unknown as Record<symbol, unknown>)[INDEX] = i;
        messages = result as ThroughwayMessage[];
      }
    } catch (error) {
      prepared = false;
      failAll(messages, { kind: 'error', error: serializeError(error) });
    }
  }

  const final: ThroughwayMessage[] = messages;
  if (prepared) {
    for (let i = 0; i < size; i++) {
      const m = messages[i]!;
      let result: unknown;
      try {
        result = handlers.handleMessage(processor, m, context);
        if (isThenable(result)) result = await result;
      } catch (error) {
        m.status = { kind: 'error', error: serializeError(error) };
        final[i] = m;
        continue;
      }
      if (!isMessage(result)) {
        m.status = { kind: 'failed', reason: `expected a Message from handleMessage, got ${describeValue(result)}` };
        final[i] = m;
        continue;
      }
      (result as unknown as Record<symbol, unknown>)[INDEX] = i;
      if (batchers !== null && result.status.kind === 'ok' && !batchers.includes(result.batcher)) {
        result.status = {
          kind: 'failed',
          reason: `unknown batcher ${JSON.stringify(result.batcher)}; the known batchers are ${batchers.map((b) => JSON.stringify(b)).join(', ')}`,
        };
      }
      final[i] = result;
    }
  }

  const failed: ThroughwayMessage[] = [];
  for (let i = 0; i < size; i++) if (final[i]!.status.kind !== 'ok') failed.push(final[i]!);
  const failedStatus = failed.map((m) => m.status);
  let handleFailedReport: CallOutput['handleFailed'];
  if (failed.length > 0 && handlers.handleFailed) {
    handleFailedReport = await runHandleFailed(handlers, failed, final, context, logs);
    keepFailed(final, failed, failedStatus);
  }

  return collect(final, batchers !== null, logs, handleFailedReport, started);
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
  logs: RunnerLog[],
  handleFailed: CallOutput['handleFailed'],
  started: number,
): CallOutput {
  const size = final.length;
  const { statuses, allOk, ackOps } = collectOutcomes(final);
  const out: CallOutput = { size, busyMs: performance.now() - started };
  if (!allOk) out.statuses = statuses as MessageStatus[];
  if (routed && size > 0) {
    const batchers: string[] = new Array(size);
    const batchKeys: unknown[] = new Array(size);
    const batchModes: BatchMode[] = new Array(size);
    const forward: number[] = [];
    const values: [unknown, Record<string, unknown>][] = [];
    for (let i = 0; i < size; i++) {
      const m = final[i]!;
      batchers[i] = m.batcher;
      batchKeys[i] = m.batchKey;
      batchModes[i] = m.batchMode;
      if (m.status.kind === 'ok') {
        forward.push(i);
        values.push([m.data, m.metadata]);
      }
    }
    out.batchers = columnOf(batchers);
    out.batchKeys = columnOf(batchKeys);
    out.batchModes = columnOf(batchModes);
    if (!allOk) out.forward = forward;
    out.values = values;
  }
  if (ackOps) out.ackOps = ackOps;
  if (handleFailed) out.handleFailed = handleFailed;
  if (logs.length > 0) out.logs = logs;
  return out;
}
