/** Running a pipeline for a throughput figure: started first, then timed rounds fed by a gated producer. */
import { Pipeline, createMessage, type PipelineOptions, type PipelineStats } from '@throughway/core';
import { CountingAck, GatedProducer, fmtRate, log, median, timedRounds } from './measure.js';

export interface ThroughputPlan {
  /** Messages in the warm-up round; its rate sizes the timed rounds. */
  warmup: number;
  /** Seconds each timed round should take (roughly). */
  roundSeconds: number;
  rounds: number;
  minPerRound?: number;
  maxPerRound?: number;
}

export interface ThroughputOutcome {
  rate: number;
  /** The warm-up round's rate: the cold figure, from the first message after start. */
  warmRate: number;
  rates: number[];
  perRound: number;
  failed: number;
  firstFailure: unknown;
  topology: unknown;
  stats: unknown;
  unacked: number;
}

/**
 * Starts a pipeline over `payloads` with a counting acknowledger, runs a warm-up round and then
 * `rounds` timed rounds (clock from release to the last ack), stops it, and returns the median rate.
 */
export async function pipelineThroughput(
  label: string,
  payloads: readonly unknown[],
  options: Omit<PipelineOptions, 'producer'> & { producer?: Omit<PipelineOptions['producer'], 'module'> },
  plan: ThroughputPlan,
  ackOptions: { idsOnly?: boolean } = {},
): Promise<ThroughputOutcome> {
  const ack = new CountingAck(ackOptions);
  const producer = new GatedProducer(payloads, createMessage, ack);
  const t0 = performance.now();
  const pipeline = await Pipeline.start({ ...options, producer: { ...options.producer, module: producer } });
  log(label, `started in ${(performance.now() - t0).toFixed(0)} ms`);
  let outcome: Omit<ThroughputOutcome, 'unacked'>;
  try {
    const w0 = performance.now();
    const warmTarget = ack.total + plan.warmup;
    producer.release(plan.warmup);
    await ack.waitFor(warmTarget);
    const warmRate = plan.warmup / ((performance.now() - w0) / 1000);
    // A whole number of thousands: with a batcher, a round that ended in a partial batch would
    // wait for batchTimeout and time the timer, not the pipeline.
    const perRound = Math.ceil(Math.min(plan.maxPerRound ?? 5_000_000, Math.max(plan.minPerRound ?? 10_000, warmRate * plan.roundSeconds)) / 1000) * 1000;
    log(label, `warm-up: ${plan.warmup.toLocaleString('en-US')} msgs at ${fmtRate(warmRate)}; rounds of ${perRound.toLocaleString('en-US')}`);
    const rates = await timedRounds(producer, ack, { warmup: 0, n: perRound, rounds: plan.rounds, label });
    outcome = {
      rate: median(rates),
      warmRate,
      rates,
      perRound,
      failed: ack.failed,
      firstFailure: ack.firstFailure,
      topology: pipeline.topology(),
      stats: pipeline.stats(),
    };
  } catch (err) {
    await pipeline.stop({ timeout: 5000 }).catch(() => undefined);
    throw err;
  }
  const { unacked } = await pipeline.stop();
  return { ...outcome, unacked };
}

/** What the threads runtime chose for demand, if topology() reports it (for the notes). */
export function demandNote(topology: unknown): string {
  const p = (topology as { processors?: Record<string, unknown>[] } | undefined)?.processors?.[0];
  if (!p) return '';
  const parts = Object.entries(p)
    .filter(([k, v]) => k !== 'name' && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'))
    .map(([k, v]) => `${k}=${String(v)}`);
  return parts.length ? `processor: ${parts.join(', ')}` : '';
}

export function failureNote(o: { failed: number; firstFailure: unknown; unacked: number }): string {
  const parts: string[] = [];
  if (o.failed) parts.push(`${o.failed} messages FAILED (first: ${JSON.stringify(o.firstFailure)})`);
  if (o.unacked) parts.push(`${o.unacked} unacked at stop`);
  return parts.join('; ');
}

/** The warm-up's own rate: what the first messages after start ran at (the cold figure). */
export function warmNote(o: ThroughputOutcome, warmup: number): string {
  return `warm-up (first ${warmup.toLocaleString('en-US')}) at ${(o.warmRate / 1e6).toFixed(2)}M msg/s`;
}

export function callNote(o: ThroughputOutcome): string {
  const p = (o.stats as PipelineStats | undefined)?.processors;
  return p && p.calls ? `${(p.messages / p.calls).toFixed(0)} msgs per processor call` : '';
}

export function joinNotes(...parts: (string | undefined | false)[]): string {
  return parts.filter(Boolean).join('; ');
}
