import { type FailureReport, OK, cell, type BatchOutput, type CallOutput, type RunnerLog } from '@throughway/workers/internal';
import { processedMessage, wantsData, type MainMessage } from '../message.js';
import type { PayloadRef } from '../runtime/runtime.js';
import { channels } from '../telemetry.js';
import { applyAckOps } from './ack-ops.js';
import { logErr } from './failure-log.js';
import type { StageHost } from './host.js';

export type StageKind = 'processor' | 'batcher';

export interface Applied {
  successful: MainMessage[];
  failed: MainMessage[];
  /** Messages handleBatch did not return: never acked. */
  notReturned: number;
  /** The value each message sent back, by message index (to forward to a batcher). */
  refs: (PayloadRef | undefined)[] | undefined;
}

type StageOutput = Partial<Pick<CallOutput, 'batchers' | 'batchKeys' | 'batchModes'>> & Omit<BatchOutput, 'values' | 'busyMs'>;

/**
 * Applies what one processor call or one batch reported, in one order for both stages:
 * statuses, routing, the processed data (for acknowledgers that read it), handleFailed's
 * telemetry, the handler's ack requests, then the split into successful and failed, the
 * runner's warnings and the failures to log. The caller acks and routes. A message that gets
 * processed data is replaced in `messages` by its processed form (see `processedMessage`).
 */
export function applyOutput(host: StageHost, stage: StageKind, messages: MainMessage[], out: StageOutput, refs: PayloadRef[] | undefined, where: Record<string, unknown>): Applied {
  const size = messages.length;
  const { statuses } = out;
  let notReturned = 0;
  if (statuses) {
    for (let i = 0; i < size; i++) {
      const status = statuses[i];
      if (status === undefined) notReturned++;
      else messages[i]!.status = status;
    }
  } else for (let i = 0; i < size; i++) messages[i]!.status = OK;
  if (out.batchers) {
    const { batchers } = out;
    const keys = out.batchKeys!;
    const modes = out.batchModes!;
    for (let i = 0; i < size; i++) {
      const m = messages[i]!;
      m.batcher = cell(batchers, i);
      m.batchKey = cell(keys, i);
      m.batchMode = cell(modes, i);
    }
  }
  let byIndex: (PayloadRef | undefined)[] | undefined;
  if (refs && refs.length > 0) {
    const { sent } = out;
    byIndex = sent ? new Array(size) : refs;
    for (let k = 0; k < refs.length; k++) {
      const i = sent ? sent[k]! : k;
      if (sent) byIndex[i] = refs[k];
      const m = messages[i]!;
      if (wantsData(m)) messages[i] = processedMessage(m, refs[k]!);
    }
  }

  // handleFailed ran in the call, before any ack: its event goes out first too.
  if (out.handleFailed && channels.handleFailed.hasSubscribers) {
    channels.handleFailed.publish({ pipeline: host.pipeline, stage, ...out.handleFailed });
  }
  if (out.ackOps) for (const [i, ops] of out.ackOps) applyAckOps(messages[i]!, ops, host.acker);

  const successful: MainMessage[] = [];
  const failed: MainMessage[] = [];
  for (let i = 0; i < size; i++) {
    if (statuses && statuses[i] === undefined) continue;
    const m = messages[i]!;
    (m.status.kind === 'ok' ? successful : failed).push(m);
  }
  if (out.logs) for (const log of out.logs) warn(host, log);
  if (out.failures) for (const report of out.failures) host.failures.report(report as FailureReport, where);
  return { successful, failed, notReturned, refs: byIndex };
}

/** A runner's warning: `msg` once, an error under `err` with its real type. */
function warn(host: StageHost, log: RunnerLog): void {
  const { msg, error, ...fields } = log as RunnerLog & { error?: import('@throughway/workers').SerializedError };
  if (error) fields.err = logErr(error);
  host.logger.warn({ pipeline: host.pipeline, ...fields }, msg);
}
