/** Counters per stage, as returned by `pipeline.stats()`. */
export interface PipelineStats {
  producers: { emitted: number; transformerErrors: number; invalidEvents: number; demanded: number; buffered: number };
  processors: {
    calls: number;
    messages: number;
    successful: number;
    failed: number;
    inFlight: number;
    threadDeaths: number;
    maxDemand: number;
    minDemand: number;
    /** Busy time of the handlers over wall time, per processor (0..1). */
    load: number;
  };
  batchers: Record<string, { batches: number; messages: number; successful: number; failed: number; pending: number; queued: number; notReturned: number }>;
  acks: { successful: number; failed: number; errors: number };
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

export class Stats {
  emitted = 0;
  transformerErrors = 0;
  invalidEvents = 0;
  demanded = 0;
  calls = 0;
  processed = 0;
  processorSuccessful = 0;
  processorFailed = 0;
  threadDeaths = 0;
  busyMs = 0;
  ackSuccessful = 0;
  ackFailed = 0;
  ackErrors = 0;
  /** Messages admitted and not yet finished (acked, or dropped by handleBatch). */
  inPipeline = 0;
  readonly startedAt = performance.now();
  #window = new RateWindow(this.startedAt);
  batchers = new Map<string, { batches: number; messages: number; successful: number; failed: number; notReturned: number }>();

  acked(successful: number, failed: number): void {
    this.ackSuccessful += successful;
    this.ackFailed += failed;
  }

  /** Rates since the reference sample of the rate window (see {@link RateWindow}). */
  rates(now = performance.now()): PipelineRates {
    return this.#window.rates({ t: now, in: this.emitted, acked: this.ackSuccessful, failed: this.ackFailed });
  }

  batcher(name: string) {
    let b = this.batchers.get(name);
    if (!b) this.batchers.set(name, (b = { batches: 0, messages: 0, successful: 0, failed: 0, notReturned: 0 }));
    return b;
  }
}
