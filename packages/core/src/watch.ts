import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { MessageStatus, ThroughwayMessage } from '@throughway/workers';
import type { Pipeline } from './pipeline.js';
import type { PipelineStats } from './stats.js';

/** Failures seen for one reason. */
export interface FailureCount {
  reason: string;
  count: number;
}

/** Distinct reasons kept; past this, new reasons count under {@link OTHER}. Bounds memory and output. */
const MAX_REASONS = 50;
const OTHER = '(other reasons)';
const REASON_CHARS = 120;

/**
 * A failed message's status as one short line: the reason a handler gave (`Message.failed`),
 * or the error's code (else its name) and message. Used to group failures by reason, so quoted
 * text and numbers (and runs of 3+ digits inside ids such as `cus_123`) are masked (`"…"`, `N`):
 * "bad id 17" and "bad id 18" count as one reason.
 *
 * @example
 * failureReason({ kind: 'failed', reason: 'missing id' }) // 'missing id'
 * failureReason({ kind: 'error', error: { name: 'Error', message: 'row 17 refused', code: 'E_X' } }) // 'E_X: row N refused'
 */
export function failureReason(status: MessageStatus): string {
  let text: string;
  if (status.kind === 'error') {
    const e = status.error as { name?: string; message?: string; code?: string };
    text = `${e.code ?? e.name ?? 'Error'}: ${e.message ?? ''}`;
  } else if (status.kind === 'failed') {
    const r = status.reason as { message?: unknown } | string | undefined;
    if (typeof r === 'string') text = r;
    else if (r !== null && typeof r === 'object' && typeof r.message === 'string') text = r.message;
    else text = JSON.stringify(r) ?? String(r);
  } else {
    text = 'ok';
  }
  text = text
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\b\d+(\.\d+)?\b|\d{3,}/g, 'N')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > REASON_CHARS ? `${text.slice(0, REASON_CHARS - 1)}…` : text;
}

interface AckEvent {
  pipeline: string;
  failed: ThroughwayMessage[];
}

interface BatchEvent {
  pipeline: string;
  batcher: string;
  durationMs: number;
}

/**
 * What `stats()` does not hold, gathered from the pipeline's telemetry (diagnostics_channel):
 * failures by reason, and each batcher's busy time. Progress, metrics and the dashboard share it.
 * Subscribes on creation; `close()` unsubscribes (it is also safe to call twice).
 *
 * @example
 * const watch = watchPipeline(pipeline)
 * // ... later
 * watch.failures() // [{ reason: 'missing id', count: 3 }]
 * watch.close()
 */
export class PipelineWatch {
  readonly #name: string;
  readonly #concurrency: Map<string, number>;
  #failures = new Map<string, number>();
  #busyMs = new Map<string, number>();
  #closed = false;
  #onAck = (event: unknown): void => {
    const e = event as AckEvent;
    if (e.pipeline !== this.#name || e.failed.length === 0) return;
    for (const m of e.failed) {
      let reason = failureReason(m.status);
      if (!this.#failures.has(reason) && this.#failures.size >= MAX_REASONS) reason = OTHER;
      this.#failures.set(reason, (this.#failures.get(reason) ?? 0) + 1);
    }
  };
  #onBatch = (event: unknown): void => {
    const e = event as BatchEvent;
    if (e.pipeline !== this.#name) return;
    this.#busyMs.set(e.batcher, (this.#busyMs.get(e.batcher) ?? 0) + e.durationMs);
  };

  constructor(pipeline: Pipeline) {
    this.#name = pipeline.name;
    this.#concurrency = new Map(pipeline.topology().batchers.map((b) => [b.name, b.concurrency]));
    subscribe('throughway:ack', this.#onAck);
    subscribe('throughway:batch', this.#onBatch);
  }

  /** Failures acked so far, grouped by {@link failureReason}, most frequent first. */
  failures(): FailureCount[] {
    return [...this.#failures].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  }

  /**
   * Each batcher's busy time over `elapsedMs` and its slots (0..1): the time its `handleBatch`
   * calls took, as the batch telemetry reports it.
   */
  batcherLoad(elapsedMs: number): Record<string, number> {
    const load: Record<string, number> = {};
    for (const [name, slots] of this.#concurrency) {
      load[name] = elapsedMs > 0 ? Math.min(1, (this.#busyMs.get(name) ?? 0) / elapsedMs / slots) : 0;
    }
    return load;
  }

  /**
   * Load per stage (0..1): what `stats()` reports where it reports it, else the batch telemetry's
   * busy time ({@link batcherLoad}).
   */
  loads(stats: PipelineStats): { processors: number; batchers: Record<string, number> } {
    const fallback = this.batcherLoad(stats.elapsedMs);
    const batchers: Record<string, number> = {};
    for (const name of this.#concurrency.keys()) {
      const reported = (stats.batchers[name] as { load?: unknown } | undefined)?.load;
      batchers[name] = typeof reported === 'number' ? reported : fallback[name]!;
    }
    return { processors: stats.processors.load, batchers };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    unsubscribe('throughway:ack', this.#onAck);
    unsubscribe('throughway:batch', this.#onBatch);
  }
}

/**
 * Starts gathering failures by reason and batcher busy time for `pipeline` (see {@link PipelineWatch}).
 *
 * @example
 * const watch = watchPipeline(pipeline)
 */
export function watchPipeline(pipeline: Pipeline): PipelineWatch {
  return new PipelineWatch(pipeline);
}
