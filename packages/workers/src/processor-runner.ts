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
  const failures = new FailureCollector();
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
        const reason = `prepareMessages must return a list of ${size} messages, got ${Array.isArray(result) ? `a list of ${result.length}` : describeValue(result)}`;
        failAll(messages, { kind: 'failed', reason });
        failures.invalidReturn('prepareMessages', reason, size);
      } else {
        // The returned list is positional: its i-th message stands for the i-th one given.
        for (let i = 0; i < size; i++) (result[i] as unknown as Record<symbol, unknown>)[INDEX] = i;
        messages = result as ThroughwayMessage[];
      }
    } catch (error) {
      prepared = false;
      const serialized = serializeError(error);
      failAll(messages, { kind: 'error', error: serialized });
      failures.add('prepareMessages', serialized, size);
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
        const serialized = serializeError(error);
        m.status = { kind: 'error', error: serialized };
        failures.add('handleMessage', serialized, 1);
        final[i] = m;
        continue;
      }
      if (!isMessage(result)) {
        const reason = `expected a Message from handleMessage, got ${describeValue(result)}`;
        m.status = { kind: 'failed', reason };
        failures.invalidReturn('handleMessage', reason, 1);
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

  const out = collect(final, batchers !== null, call.want, logs, handleFailedReport, started);
  const reports = failures.reports();
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
  want: Wanted | undefined,
  logs: RunnerLog[],
  handleFailed: CallOutput['handleFailed'],
  started: number,
): CallOutput {
  const size = final.length;
  const { statuses, allOk, ackOps } = collectOutcomes(final);
  const out: CallOutput = { size, busyMs: 0 };
  if (!allOk) out.statuses = statuses as MessageStatus[];
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
      out.batchers = columnOf(batchers);
      out.batchKeys = columnOf(batchKeys);
      out.batchModes = columnOf(batchModes);
    }
  }
  collectValues(out, final, (i) => routed && final[i]!.status.kind === 'ok', want);
  if (ackOps) out.ackOps = ackOps;
  if (handleFailed) out.handleFailed = handleFailed;
  if (logs.length > 0) out.logs = logs;
  out.busyMs = performance.now() - started;
  return out;
}

/**
 * Puts `[data, metadata]` into `out.values` for each message that goes on (`needed`) or whose
 * acknowledger wants its processed data (`want`), with their indices in `out.sent` unless they
 * are every message in order. `undefined` entries (not returned by handleBatch) are skipped.
 */
export function collectValues(
  out: { values?: ProcessedValue[]; sent?: number[] },
  final: readonly (ThroughwayMessage | undefined)[],
  needed: ((i: number) => boolean) | null,
  want: Wanted | undefined,
): void {
  const size = final.length;
  if (want === undefined && needed === null) return;
  const values: ProcessedValue[] = [];
  const sent: number[] = [];
  let w = 0;
  for (let i = 0; i < size; i++) {
    const m = final[i];
    if (!m) continue;
    let wanted = want === true;
    if (want !== undefined && want !== true) {
      while (w < want.length && want[w]! < i) w++;
      wanted = want[w] === i;
    }
    if (!wanted && !(needed?.(i) ?? false)) continue;
    values.push([m.data, m.metadata]);
    sent.push(i);
  }
  if (values.length === 0) return;
  out.values = values;
  if (values.length !== size) out.sent = sent;
}
