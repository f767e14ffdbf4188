import type { MessageStatus, ThroughwayMessage } from '@throughway/workers';
/** Counters per stage, as returned by `pipeline.stats()`. */
export interface PipelineStats {
  producers: { emitted: number; transformerErrors: number; invalidEvents: number; demanded: number; buffered: number };
  processors: {
    calls: number;
    /** Hand-offs to the processors, each one or more calls (on threads, one hop each): `calls / tasks` is the calls per hop. */
    tasks: number;
    messages: number;
    successful: number;
    failed: number;
    inFlight: number;
    threadDeaths: number;
    maxDemand: number;
    minDemand: number;
    /**
     * The processors' busy time over wall time, per processor (0..1): on threads, each task's
     * whole time in its thread (callbacks, codec, task overhead); a saturated thread reads ~1.
     */
    load: number;
  };
  /**
   * Per batcher. `calls`: hand-offs to the batch slots, each carrying every batch queued for
   * its slot at the time (on threads, one hop each): `batches / calls` is the batches per hop.
   */
  batchers: Record<string, { batches: number; calls: number; messages: number; successful: number; failed: number; pending: number; queued: number; notReturned: number }>;
  /** `failures`: failed acks by reason (`Name: message` for errors), at most 100 reasons. */
  acks: { successful: number; failed: number; errors: number; failures: Record<string, number> };
  /** Messages taken into the pipeline and not yet acked. */
  unacked: number;
  /** Milliseconds since the pipeline started. */
  elapsedMs: number;
  /** Rates over the last interval: since the latest earlier `stats()` call at least ~1 s ago. */
  rates: PipelineRates;
  /** The rate limit in force and how often it held demand back; `null` without `rateLimiting`. */
  rateLimiting: { allowedMessages: number; interval: number; throttled: number } | null;
}

/** Per-second rates over `intervalMs`, as in `stats().rates`. */
export interface PipelineRates {
  /** The span the rates cover, in milliseconds (about 1000 once the pipeline has run a second). */
  intervalMs: number;
  /** Events emitted by the producers. */
  inPerSecond: number;
  /** Messages acked as successful. */
  ackedPerSecond: number;
  /** Messages acked as failed. */
  failedPerSecond: number;
}

interface RateSample {
  t: number;
  in: number;
  acked: number;
  failed: number;
}

/**
 * Rates without a timer: each `stats()` call leaves a sample (at most one per 100 ms) and
 * measures against the newest sample at least `windowMs` old, so every observer (a progress bar
 * at 10 Hz, a scrape every 15 s) sees rates over about the last second, or since its last look.
 */
class RateWindow {
  #samples: RateSample[];

  constructor(startedAt: number, readonly windowMs = 1000) {
    this.#samples = [{ t: startedAt, in: 0, acked: 0, failed: 0 }];
  }

  rates(now: RateSample): PipelineRates {
    const samples = this.#samples;
    let ref = 0;
    for (let i = samples.length - 1; i >= 0; i--) {
      if (now.t - samples[i]!.t >= this.windowMs) {
        ref = i;
        break;
      }
    }
    if (ref > 0) samples.splice(0, ref);
    const base = samples[0]!;
    if (now.t - samples[samples.length - 1]!.t >= 100) samples.push(now);
    const span = now.t - base.t;
    const per = (a: number, b: number): number => (span > 0 ? ((a - b) * 1000) / span : 0);
    return { intervalMs: span, inPerSecond: per(now.in, base.in), ackedPerSecond: per(now.acked, base.acked), failedPerSecond: per(now.failed, base.failed) };
  }
}

const MAX_REASONS = 100;

/** A failure's reason as one line: `Name: message` for errors, the reason text for `failed`. */
export function reasonOf(status: MessageStatus): string {
  if (status.kind === 'error') return `${status.error.name}: ${status.error.message}`;
  if (status.kind !== 'failed') return 'ok';
  const { reason } = status;
  if (typeof reason === 'string') return reason;
  if (reason !== null && typeof reason === 'object' && typeof (reason as { message?: unknown }).message === 'string') {
    const r = reason as { name?: unknown; message: string };
    return typeof r.name === 'string' ? `${r.name}: ${r.message}` : r.message;
  }
  try {
    return JSON.stringify(reason) ?? String(reason);
  } catch {
    return String(reason);
  }
}

export class Stats {
  emitted = 0;
  transformerErrors = 0;
  invalidEvents = 0;
  demanded = 0;
  calls = 0;
  tasks = 0;
  processed = 0;
  processorSuccessful = 0;
  processorFailed = 0;
  threadDeaths = 0;
  busyMs = 0;
  ackSuccessful = 0;
  ackFailed = 0;
  ackErrors = 0;
  #inPipeline = 0;
  readonly startedAt = performance.now();
  #window = new RateWindow(this.startedAt);
  batchers = new Map<string, { batches: number; calls: number; messages: number; successful: number; failed: number; notReturned: number }>();

  /** Failed acks by reason (see `reasonOf`), at most MAX_REASONS distinct ones. */
  readonly failures = new Map<string, number>();

  /**
   * Messages admitted and not yet finished (acked, or dropped by handleBatch): counted from
   * admission by a producer stage, so messages waiting in a producer's buffer are in it.
   */
  get inPipeline(): number {
    return this.#inPipeline;
  }

  /** Messages entered the pipeline (a producer emitted them, or push/testBatch). */
  admit(count: number): void {
    this.#inPipeline += count;
  }

  /** Messages left the pipeline: acked by their last stage, failed by a dead thread, or dropped. */
  finish(count: number): void {
    this.#inPipeline -= count;
  }

  acked(successful: number, failed: ThroughwayMessage[]): void {
    this.ackSuccessful += successful;
    this.ackFailed += failed.length;
    for (const m of failed) {
      let reason = reasonOf(m.status);
      if (!this.failures.has(reason) && this.failures.size >= MAX_REASONS) reason = 'other reasons';
      this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
    }
  }

  /** Rates since the reference sample of the rate window (see {@link RateWindow}). */
  rates(now = performance.now()): PipelineRates {
    return this.#window.rates({ t: now, in: this.emitted, acked: this.ackSuccessful, failed: this.ackFailed });
  }

  batcher(name: string) {
    let b = this.batchers.get(name);
    if (!b) this.batchers.set(name, (b = { batches: 0, calls: 0, messages: 0, successful: 0, failed: 0, notReturned: 0 }));
    return b;
  }
}
