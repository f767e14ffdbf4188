import { performance } from 'node:perf_hooks';
import { describeValue, serializeError } from './errors.js';
import type { PipelineHandlers } from './define-pipeline.js';
import { isThenable, runHandleFailed } from './handle-failed.js';
import { INDEX, handlerMessage, isMessage, type MessageStatus, type ThroughwayMessage } from './message.js';
import { collectOutcomes } from './outcomes.js';
import { collectValues, keepFailed } from './processor-runner.js';
import { FailureCollector } from './failures.js';
import type { BatchInput, BatchOutput, RunnerLog } from './runner-types.js';

/**
 * One batch with Broadway's semantics: `handleBatch` over the batch, its returned messages split
 * by status, `handleFailed` over the failed ones. A throw or a return that is not a list of the
 * batch's messages fails the whole batch; a message it does not return is logged and never acked.
 */
export async function runBatch(handlers: PipelineHandlers, context: unknown, batch: BatchInput): Promise<BatchOutput> {
  const started = performance.now();
  const { batcher, info, items } = batch;
  const size = items.length;
  const logs: RunnerLog[] = [];
  const failures = new FailureCollector();
  const messages: ThroughwayMessage[] = new Array(size);
  for (let i = 0; i < size; i++) {
    const item = items[i]!;
    messages[i] = handlerMessage(i, item.data, item.metadata, batcher, info.batchKey, item.batchMode);
  }
  const given = messages.slice();

  const final: (ThroughwayMessage | undefined)[] = new Array(size);
  let whole: MessageStatus | undefined;
  try {
    let result: unknown = handlers.handleBatch!(batcher, messages, info, context);
    if (isThenable(result)) result = await result;
    if (!Array.isArray(result)) {
      whole = { kind: 'failed', reason: `expected handleBatch to return a list of messages, got ${describeValue(result)}` };
    } else {
      for (const m of result) {
        const index = isMessage(m) ? (m as unknown as Record<symbol, number | undefined>)[INDEX] : undefined;
        if (index === undefined || index < 0 || index >= size) {
          whole = { kind: 'failed', reason: `expected handleBatch to return the messages it was given, got ${describeValue(m)} in the list` };
          break;
        }
        final[index] = m as ThroughwayMessage;
      }
    }
  } catch (error) {
    whole = { kind: 'error', error: serializeError(error) };
    failures.add('handleBatch', whole.error, size, { batcher, batchKey: info.batchKey });
  }
  if (whole?.kind === 'failed') failures.invalidReturn('handleBatch', String(whole.reason), size, { batcher, batchKey: info.batchKey });

  if (whole) {
    for (let i = 0; i < size; i++) {
      given[i]!.status = whole;
      final[i] = given[i];
    }
  } else {
    const returned = final.reduce((n, m) => (m ? n + 1 : n), 0);
    if (returned < size) {
      logs.push({ msg: `handleBatch received ${size} messages and returned only ${returned}; the others are never acked`, batcher, batchKey: info.batchKey });
    }
  }

  const failed: ThroughwayMessage[] = [];
  for (const m of final) if (m && m.status.kind !== 'ok') failed.push(m);
  let handleFailed: BatchOutput['handleFailed'];
  if (failed.length > 0 && handlers.handleFailed) {
    const failedStatus = failed.map((m) => m.status);
    handleFailed = await runHandleFailed(handlers, failed, final as ThroughwayMessage[], context, logs);
    keepFailed(final as ThroughwayMessage[], failed, failedStatus);
  }

  const { statuses, allOk, ackOps } = collectOutcomes(final);
  const out: BatchOutput = { busyMs: 0 };
  if (!allOk) out.statuses = statuses;
  if (ackOps) out.ackOps = ackOps;
  if (handleFailed) out.handleFailed = handleFailed;
  if (logs.length > 0) out.logs = logs;
  const reports = failures.reports();
  if (reports) out.failures = reports;
  if (batch.want) collectValues(out, final, null, true);
  out.busyMs = performance.now() - started;
  return out;
}
