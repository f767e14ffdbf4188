import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PipelineWatch, type Pipeline, type PipelineStats } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { invalidOption, onlyKeys, plainObject } from '@throughway/workers/internal';
import { readSources, type GaugeSource } from './source-gauges.js';

export interface MetricsOptions {
  /** Where to register; a new `Registry` when left out. One pipeline per registry. */
  registry?: Registry;
  /**
   * Sources with gauges of their own (an object with `gauges()`, such as what `sqliteQueue(...)`
   * returns), read at each scrape into `throughway_source_messages{source, state}`. Keys are the
   * `source` label.
   */
  sources?: Record<string, GaugeSource>;
}

/** A pipeline's metrics in a prom-client registry; `close()` stops feeding them and unregisters them. */
export interface PipelineMetrics {
  readonly registry: Registry;
  /** The exposition text, as `/metrics` serves it. */
  metrics(): Promise<string>;
  close(): void;
}

/** Seconds: 100 µs to 30 s, for handler calls that take from microseconds (no-op) to seconds (bulk writes). */
const DURATION_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Messages in one batch. */
const SIZE_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/**
 * Registers `throughway_*` metrics for `pipeline` (labels `pipeline`, `stage`, `batcher`; never a
 * per-message label). Counters and gauges are read from `stats()` at each scrape; durations and
 * batch sizes are histograms fed by the diagnostics_channel telemetry as calls finish.
 *
 * @example
 * import { Registry } from 'prom-client'
 * const registry = new Registry()
 * const metrics = createMetrics(pipeline, { registry })  // then serve registry.metrics() yourself
 */
export function createMetrics(pipeline: Pipeline, options: MetricsOptions = {}): PipelineMetrics {
  onlyKeys('metrics', plainObject('metrics', options), ['registry', 'sources']);
  const registry = options.registry ?? new Registry();
  if (!(registry instanceof Registry)) invalidOption('metrics.registry', "a prom-client Registry (from the same copy of prom-client as @throughway/metrics)", registry);
  const sources = options.sources ?? {};
  for (const [name, source] of Object.entries(sources)) {
    if (source === null || (typeof source !== 'object' && typeof source !== 'function') || typeof source.gauges !== 'function') {
      invalidOption(`metrics.sources.${name}`, 'an object with a gauges() method', source);
    }
  }
  if (registry.getSingleMetric('throughway_messages_in_total')) {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', 'This registry already holds throughway metrics: use one registry per pipeline (and merge them with Registry.merge if you serve them together)');
  }

  const p = { pipeline: pipeline.name };
  const watch = new PipelineWatch(pipeline);
  const registers = [registry];
  const names: string[] = [];
  // One stats() per scrape, shared by every collector of that scrape: the collectors of one
  // scrape run in one turn of the event loop, so the snapshot is dropped at the next turn. (A
  // snapshot kept for a fixed time served a scrape right after the last ack the counts of the
  // scrape before it.)
  let snapshot: PipelineStats | undefined;
  const stats = (): PipelineStats => {
    if (!snapshot) {
      snapshot = pipeline.stats();
      setImmediate(() => {
        snapshot = undefined;
      }).unref();
    }
    return snapshot;
  };

  const counterFromStats = (name: string, help: string, read: (s: PipelineStats) => number): void => {
    let last = 0;
    names.push(name);
    new Counter({
      name,
      help,
      labelNames: ['pipeline'],
      registers,
      collect() {
        const value = read(stats());
        if (value > last) this.inc(p, value - last);
        last = Math.max(last, value);
      },
    }).inc(p, 0);
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], collect: (g: Gauge<L>) => void | Promise<void>): void => {
    names.push(name);
    new Gauge<L>({ name, help, labelNames, registers, collect() {
      return collect(this);
    } });
  };

  counterFromStats('throughway_messages_in_total', 'Events emitted by the producers.', (s) => s.producers.emitted);
  counterFromStats('throughway_messages_acked_total', 'Messages acked to their source as successful.', (s) => s.acks.successful);
  counterFromStats('throughway_messages_failed_total', 'Messages acked to their source as failed.', (s) => s.acks.failed);
  counterFromStats('throughway_ack_errors_total', 'Acknowledger calls that threw.', (s) => s.acks.errors);
  counterFromStats('throughway_transformer_errors_total', 'Events the transformer threw on (dropped).', (s) => s.producers.transformerErrors);
  counterFromStats('throughway_thread_deaths_total', 'Processor or batch threads that died and were replaced.', (s) => s.processors.threadDeaths);
  counterFromStats('throughway_rate_limiter_throttled_total', 'Times demand found the rate limit used up and waited for the next interval.', (s) => s.rateLimiting?.throttled ?? 0);

  gauge('throughway_messages_in_flight', 'Messages taken in and not yet acked.', ['pipeline'], (g) => g.set(p, stats().unacked));
  gauge('throughway_producer_buffered_messages', 'Events emitted by the producers and not yet handed to a processor.', ['pipeline'], (g) => g.set(p, stats().producers.buffered));
  gauge('throughway_processor_in_flight_calls', 'Processor calls sent and not yet returned.', ['pipeline', 'stage'], (g) => g.set({ ...p, stage: 'default' }, stats().processors.inFlight));
  gauge('throughway_batcher_pending_messages', 'Messages waiting in a batcher: in forming batches and in batches queued for a slot.', ['pipeline', 'batcher'], (g) => {
    for (const [batcher, b] of Object.entries(stats().batchers)) g.set({ ...p, batcher }, b.pending + b.queued);
  });
  gauge('throughway_stage_load_ratio', 'Busy time of a stage over wall time and its slots (0 to 1).', ['pipeline', 'stage', 'batcher'], (g) => {
    const loads = watch.loads(stats());
    g.set({ ...p, stage: 'processor', batcher: '' }, loads.processors);
    for (const [batcher, load] of Object.entries(loads.batchers)) g.set({ ...p, stage: 'batcher', batcher }, load);
  });
  gauge('throughway_rate_limit_allowed_messages', 'Messages allowed per rate-limit interval (absent without rate limiting).', ['pipeline'], (g) => {
    const r = stats().rateLimiting;
    if (r) g.set(p, r.allowedMessages);
  });
  gauge('throughway_rate_limit_interval_seconds', 'The rate-limit interval (absent without rate limiting).', ['pipeline'], (g) => {
    const r = stats().rateLimiting;
    if (r) g.set(p, r.interval / 1000);
  });
  gauge('throughway_pipeline_running', '1 while the pipeline runs, 0 once it drains or stopped.', ['pipeline'], (g) => g.set(p, pipeline.state === 'running' ? 1 : 0));
  gauge('throughway_source_messages', "A source's own messages by state (for a queue: ready, delayed, leased, done, dead_lettered).", ['pipeline', 'source', 'state'], async (g) => {
    g.reset();
    for (const { source, state, value } of await readSources(sources)) g.set({ ...p, source, state }, value);
  });

  names.push('throughway_processor_duration_seconds', 'throughway_batch_duration_seconds', 'throughway_batch_size_messages');
  const processorDuration = new Histogram({ name: 'throughway_processor_duration_seconds', help: 'Duration of processor calls (prepareMessages and handleMessage over a chunk), as the main thread saw them.', labelNames: ['pipeline', 'stage'], buckets: DURATION_BUCKETS, registers });
  const batchDuration = new Histogram({ name: 'throughway_batch_duration_seconds', help: 'Duration of handleBatch calls, as the main thread saw them.', labelNames: ['pipeline', 'batcher'], buckets: DURATION_BUCKETS, registers });
  const batchSize = new Histogram({ name: 'throughway_batch_size_messages', help: 'Messages per batch.', labelNames: ['pipeline', 'batcher'], buckets: SIZE_BUCKETS, registers });

  const onProcessor = (event: unknown): void => {
    const e = event as { pipeline: string; processor: string; durationMs: number };
    if (e.pipeline === pipeline.name) processorDuration.observe({ ...p, stage: e.processor }, e.durationMs / 1000);
  };
  const onBatch = (event: unknown): void => {
    const e = event as { pipeline: string; batcher: string; durationMs: number; batchInfo: { size: number } };
    if (e.pipeline !== pipeline.name) return;
    batchDuration.observe({ ...p, batcher: e.batcher }, e.durationMs / 1000);
    batchSize.observe({ ...p, batcher: e.batcher }, e.batchInfo.size);
  };
  subscribe('throughway:processor', onProcessor);
  subscribe('throughway:batch', onBatch);

  let closed = false;
  return {
    registry,
    metrics: () => registry.metrics(),
    close() {
      if (closed) return;
      closed = true;
      unsubscribe('throughway:processor', onProcessor);
      unsubscribe('throughway:batch', onBatch);
      watch.close();
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}
