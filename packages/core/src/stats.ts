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
  batchers = new Map<string, { batches: number; messages: number; successful: number; failed: number; notReturned: number }>();

  acked(successful: number, failed: number): void {
    this.ackSuccessful += successful;
    this.ackFailed += failed;
  }

  batcher(name: string) {
    let b = this.batchers.get(name);
    if (!b) this.batchers.set(name, (b = { batches: 0, messages: 0, successful: 0, failed: 0, notReturned: 0 }));
    return b;
  }
}
