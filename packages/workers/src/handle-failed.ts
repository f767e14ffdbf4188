import { serializeError } from './errors.js';
import type { PipelineHandlers } from './define-pipeline.js';
import { INDEX, isMessage, type ThroughwayMessage } from './message.js';
import type { HandleFailedReport, RunnerLog } from './runner-types.js';

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Runs `handleFailed` over the failed messages of a call or batch and writes what it returns
 * back into `final` by message index. What it does not return keeps its original failed status
 * (acked as failed, so the source can retry it); a throw keeps every original.
 */
export async function runHandleFailed(
  handlers: PipelineHandlers,
  failed: ThroughwayMessage[],
  final: ThroughwayMessage[],
  context: unknown,
  logs: RunnerLog[],
): Promise<HandleFailedReport> {
  let returned: unknown;
  try {
    returned = handlers.handleFailed!(failed, context);
    if (isThenable(returned)) returned = await returned;
  } catch (error) {
    logs.push({ msg: 'handleFailed threw; the failed messages are acked as they were', error: serializeError(error) });
    return { size: failed.length, threw: true };
  }
  if (!Array.isArray(returned)) {
    logs.push({ msg: `handleFailed must return a list of messages, got ${typeof returned}; the failed messages are acked as they were` });
    return { size: failed.length, threw: false };
  }
  if (returned.length !== failed.length) {
    logs.push({ msg: `handleFailed received ${failed.length} messages and returned ${returned.length}` });
  }
  const originals = new Set(failed.map((m) => (m as { [INDEX]?: number })[INDEX]));
  for (const m of returned) {
    if (!isMessage(m)) continue;
    const index = (m as { [INDEX]?: number })[INDEX];
    if (index !== undefined && originals.has(index)) final[index] = m;
  }
  return { size: failed.length, threw: false };
}
