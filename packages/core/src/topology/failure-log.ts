import type { Logger } from 'pino';
import type { SerializedError } from '@throughway/workers';
import { failureKey, type FailureReport } from '@throughway/workers/internal';

/**
 * An error as a log field. pino's `err` serializer names the type after the value's
 * constructor, so a plain object would log as `type: "Object"`; without a prototype it falls
 * back to the error's own `name` (TypeError, ValidationError, ...).
 */
export function logErr(error: SerializedError): SerializedError {
  return Object.assign(Object.create(null) as SerializedError, error);
}

/** Full log lines per distinct failure and interval before the rest are only counted. */
export const FAILURE_LOG_BURST = 3;
/** How often a failure that keeps happening is summed up in one line. */
export const FAILURE_LOG_INTERVAL_MS = 10_000;

interface Flood {
  stage: FailureReport['stage'];
  logged: number;
  times: number;
  messages: number;
  last: SerializedError;
  timer?: NodeJS.Timeout;
}

function describe(report: FailureReport): string {
  const failed = `${report.count} message${report.count === 1 ? '' : 's'} failed`;
  if (report.error.code === 'ERR_THROUGHWAY_DATA_NOT_CLONEABLE') return `${failed}: their data or metadata cannot be copied into a processor thread`;
  return report.error.code === 'ERR_THROUGHWAY_INVALID_RETURN' ? `${report.stage} returned an invalid value; ${failed}` : `${report.stage} threw; ${failed}`;
}

/**
 * Logs the failures nobody asked for (a callback that threw or returned junk) at error level,
 * as Broadway logs a crashed callback, without flooding the log: each distinct failure (same
 * callback, error type, code and throw site) is logged in full `FAILURE_LOG_BURST` times, then
 * counted and summed up in one line per `FAILURE_LOG_INTERVAL_MS`. A quiet interval resets it.
 */
export class FailureLog {
  #pipeline: string;
  #logger: Logger;
  #floods = new Map<string, Flood>();

  constructor(pipeline: string, logger: Logger) {
    this.#pipeline = pipeline;
    this.#logger = logger;
  }

  report(report: FailureReport, where: Record<string, unknown> = {}): void {
    const key = failureKey(report.stage, report.error);
    let flood = this.#floods.get(key);
    if (!flood) {
      flood = { stage: report.stage, logged: 0, times: 0, messages: 0, last: report.error };
      this.#floods.set(key, flood);
      this.#arm(key, flood);
    }
    if (flood.logged < FAILURE_LOG_BURST) {
      flood.logged++;
      const fields: Record<string, unknown> = { pipeline: this.#pipeline, stage: report.stage, ...where, messages: report.count, err: logErr(report.error) };
      if (report.batcher !== undefined) fields.batcher = report.batcher;
      if (report.batchKey !== undefined) fields.batchKey = report.batchKey;
      this.#logger.error(fields, describe(report));
      return;
    }
    flood.times++;
    flood.messages += report.count;
    flood.last = report.error;
  }

  /** Sums up what is still counted and clears the timers (the pipeline stops). */
  flush(): void {
    for (const flood of this.#floods.values()) {
      clearTimeout(flood.timer);
      this.#summary(flood);
    }
    this.#floods.clear();
  }

  #arm(key: string, flood: Flood): void {
    flood.timer = setTimeout(() => {
      if (flood.times === 0) {
        this.#floods.delete(key);
        return;
      }
      this.#summary(flood);
      this.#arm(key, flood);
    }, FAILURE_LOG_INTERVAL_MS);
    flood.timer.unref();
  }

  #summary(flood: Flood): void {
    if (flood.times === 0) return;
    this.#logger.error(
      { pipeline: this.#pipeline, stage: flood.stage, repeated: flood.times, messages: flood.messages, err: logErr(flood.last) },
      `${flood.stage} failed ${flood.times} more times (${flood.messages} messages) with the same error; shown in full only the first ${FAILURE_LOG_BURST} times per ${FAILURE_LOG_INTERVAL_MS / 1000} s`,
    );
    flood.times = 0;
    flood.messages = 0;
  }
}
