import { serializeError, type SerializedError } from './errors.js';
import type { FailureReport } from './runner-types.js';

/**
 * What makes two failures "the same" for the log: the callback, the error's type and code and
 * where it was thrown. Not the message: it often carries the message's id, and a flood of one
 * bug would otherwise look like thousands of different errors.
 */
export function failureKey(stage: string, error: SerializedError): string {
  const site = error.stack?.split('\n').find((line) => line.trimStart().startsWith('at ')) ?? error.message;
  return `${stage}\u0000${error.name}\u0000${error.code ?? ''}\u0000${site.trim()}`;
}

/** Groups the unasked-for failures of one call or batch, so each distinct error crosses once. */
export class FailureCollector {
  /** Made on the first failure: every call and batch has a collector, few have a failure. */
  #reports: Map<string, FailureReport> | undefined;

  add(stage: FailureReport['stage'], error: SerializedError, count: number, extra?: Pick<FailureReport, 'batcher' | 'batchKey'>): void {
    const key = failureKey(stage, error);
    const reports = (this.#reports ??= new Map());
    const known = reports.get(key);
    if (known) known.count += count;
    else reports.set(key, { stage, error, count, ...extra });
  }

  /** A callback returned something it must not: reported as an error of that type. */
  invalidReturn(stage: FailureReport['stage'], message: string, count: number, extra?: Pick<FailureReport, 'batcher' | 'batchKey'>): void {
    const error = serializeError(Object.assign(new TypeError(message), { code: 'ERR_THROUGHWAY_INVALID_RETURN' }));
    // The stack points into the runner, not the user's code: left out, it would only mislead.
    delete error.stack;
    this.add(stage, error, count, extra);
  }

  reports(): FailureReport[] | undefined {
    return this.#reports === undefined ? undefined : [...this.#reports.values()];
  }
}
