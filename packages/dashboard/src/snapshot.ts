import { PipelineWatch, type FailureCount, type Pipeline, type PipelineState, type PipelineStats, type Topology } from '@throughway/core';

/** One stage as the page draws it. */
export interface StageView {
  /** `producer`, `processor`, `batcher` or `slot`. */
  kind: 'producer' | 'processor' | 'batcher' | 'slot';
  /** Unique on the page: `processor:default`, `slot:insert_all:0`. */
  id: string;
  name: string;
  concurrency: number;
  /** Messages per second through this stage over the last tick. */
  perSecond: number;
  /** Busy time over wall time and slots, 0..1 (null where the engine does not measure it). */
  load: number | null;
  /** Messages held by this stage now (null where the engine does not count it: batch slots). */
  inFlight: number | null;
  /** What the stage feeds (ids). */
  to: string[];
}

/** A point of the throughput chart. */
export interface HistoryPoint {
  /** ms since the epoch */
  t: number;
  in: number;
  acked: number;
  failed: number;
}

export interface Snapshot {
  pipeline: string;
  state: PipelineState;
  elapsedMs: number;
  stages: StageView[];
  totals: { in: number; acked: number; failed: number; unacked: number };
  rates: { in: number; acked: number; failed: number };
  failures: FailureCount[];
  rateLimiting: { allowedMessages: number; interval: number; throttled: number } | null;
  allowControl: boolean;
}

/** Points kept for the chart: 5 minutes at one a second. */
const HISTORY = 300;

/**
 * Turns `stats()` and `topology()` into what the page draws, once a tick: per-stage throughput
 * from the change of each stage's counters since the last tick, the load `stats()` reports (or the
 * batch telemetry's busy time), and the throughput history for the chart.
 */
export class Snapshots {
  readonly #pipeline: Pipeline;
  readonly #allowControl: boolean;
  readonly #watch: PipelineWatch;
  readonly history: HistoryPoint[] = [];
  #last?: { at: number; processed: number; batched: Record<string, number> };
  #latest?: Snapshot;

  constructor(pipeline: Pipeline, allowControl: boolean) {
    this.#pipeline = pipeline;
    this.#allowControl = allowControl;
    this.#watch = new PipelineWatch(pipeline);
  }

  /**
   * The snapshot of the last tick (taking one if there was none yet), with the state and the rate
   * limit as they are now: a page that just changed the limit reads its change back at once.
   */
  get latest(): Snapshot {
    if (!this.#latest) return this.tick();
    return { ...this.#latest, state: this.#pipeline.state, rateLimiting: this.#pipeline.stats().rateLimiting };
  }

  /** Takes a new snapshot and adds a point to the history. */
  tick(): Snapshot {
    const p = this.#pipeline;
    const s = p.stats();
    const now = performance.now();
    const batched = Object.fromEntries(Object.entries(s.batchers).map(([name, b]) => [name, b.messages]));
    const last = this.#last ?? { at: now - s.elapsedMs, processed: 0, batched: {} };
    const seconds = Math.max(0.001, (now - last.at) / 1000);
    this.#last = { at: now, processed: s.processors.messages, batched };
    const perSecond = (count: number, before: number | undefined): number => (count - (before ?? 0)) / seconds;
    const snapshot: Snapshot = {
      pipeline: p.name,
      state: p.state,
      elapsedMs: s.elapsedMs,
      stages: stagesOf(p.topology(), s, this.#watch.loads(s), {
        processor: perSecond(s.processors.messages, last.processed),
        batcher: (name) => perSecond(batched[name] ?? 0, last.batched[name]),
      }),
      totals: { in: s.producers.emitted, acked: s.acks.successful, failed: s.acks.failed, unacked: s.unacked },
      rates: { in: s.rates.inPerSecond, acked: s.rates.ackedPerSecond, failed: s.rates.failedPerSecond },
      failures: this.#watch.failures().slice(0, 10),
      rateLimiting: s.rateLimiting,
      allowControl: this.#allowControl,
    };
    this.history.push({ t: Date.now(), in: snapshot.rates.in, acked: snapshot.rates.acked, failed: snapshot.rates.failed });
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    this.#latest = snapshot;
    return snapshot;
  }

  close(): void {
    this.#watch.close();
  }
}

function stagesOf(
  topology: Topology,
  s: PipelineStats,
  loads: { processors: number; batchers: Record<string, number> },
  rate: { processor: number; batcher: (name: string) => number },
): StageView[] {
  const batcherIds = topology.batchers.map((b) => `batcher:${b.name}`);
  const stages: StageView[] = [];
  for (const p of topology.producers) {
    stages.push({ kind: 'producer', id: `producer:${p.name}`, name: p.name, concurrency: p.concurrency, perSecond: s.rates.inPerSecond, load: null, inFlight: s.producers.buffered, to: topology.processors.map((x) => `processor:${x.name}`) });
  }
  for (const p of topology.processors) {
    stages.push({ kind: 'processor', id: `processor:${p.name}`, name: p.name, concurrency: p.concurrency, perSecond: rate.processor, load: loads.processors, inFlight: s.processors.inFlight, to: batcherIds });
  }
  for (const b of topology.batchers) {
    const stats = s.batchers[b.name];
    const slots = Array.from({ length: b.concurrency }, (_, i) => `slot:${b.name}:${i}`);
    stages.push({ kind: 'batcher', id: `batcher:${b.name}`, name: b.name, concurrency: b.concurrency, perSecond: rate.batcher(b.name), load: loads.batchers[b.name] ?? null, inFlight: stats ? stats.pending + stats.queued : 0, to: slots });
    // The engine counts per batcher, not per slot: each slot shows its batcher's share.
    slots.forEach((id, i) => {
      stages.push({ kind: 'slot', id, name: `${b.name} #${i}`, concurrency: 1, perSecond: rate.batcher(b.name) / b.concurrency, load: loads.batchers[b.name] ?? null, inFlight: null, to: [] });
    });
  }
  return stages;
}
