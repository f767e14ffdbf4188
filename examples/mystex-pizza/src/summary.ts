/**
 * The end-of-run report: what went in, what was written, what failed and why, how fast, and the
 * consistency check. Built as data first (`RunSummary`, also printed as JSON with `--json` and read
 * by the benchmark), then rendered as a table.
 */
import type { CheckResult, QueueState, TableState } from './check.js';
import { columns, duration, int } from './format.js';
import type { Tally } from './generator.js';

export interface RunSummary {
  database: string;
  queue: string;
  seed: number;
  /** Events the generator put in the queue for this database (over all runs). */
  events: number;
  /** True when this run found the events already queued (a rerun after an interruption). */
  resumed: boolean;
  /** Events this run took from the queue and finished (acked successful or failed). */
  processed: number;
  successful: number;
  failed: number;
  /** From the start of the pipeline to the end of its drain (excludes generation and the check). */
  wallMs: number;
  /** Generating and enqueueing the events (0 when resumed). */
  enqueueMs: number;
  eventsPerSecond: number;
  /** CPU time of the whole process (every thread) while the pipeline ran, user + system. */
  cpuMs: number;
  /** Set when a signal stopped the run before the queue was empty. */
  interruptedBy?: string;
  tally: Tally;
  tables?: TableState;
  queueState?: QueueState;
  /** Null when the run was interrupted: the check only means something on a drained queue. */
  check: CheckResult | null;
}

export function renderSummary(s: RunSummary): string {
  const out: string[] = [];
  const t = s.tables;
  const q = s.queueState;
  const deadLetters = q ? Object.values(q.deadLetters).reduce((a, b) => a + b, 0) : 0;
  out.push(s.interruptedBy ? `Mystex Pizza: stopped by ${s.interruptedBy}` : 'Mystex Pizza: run summary');
  const rows: string[][] = [
    ['database', s.database],
    ['queue', s.queue],
    ['events in', `${int(s.events)} (seed ${s.seed}${s.resumed ? ', resumed from the queue' : ''})`],
    ['processed this run', `${int(s.processed)} (${int(s.successful)} ok, ${int(s.failed)} failed)`],
  ];
  if (q) rows.push(['still in the queue', int(q.remaining)]);
  if (t) {
    rows.push(['customers written', `${int(t.customers)} (${int(t.realCustomers)} with real data)`]);
    rows.push(['placeholders waiting', `${int(t.placeholders)} (orders came, their customer.created did not)`]);
    rows.push(['orders written', int(t.orders)]);
  }
  rows.push(['ignored event types', `${int(s.tally.rows.ignored)} in the stream (acked, not stored)`]);
  if (q) {
    rows.push(['failures (dead letters)', int(deadLetters)]);
    for (const [reason, count] of Object.entries(q.deadLetters).sort((a, b) => b[1] - a[1])) rows.push([`  ${reason}`, int(count)]);
  }
  rows.push(['wall time', `${duration(s.wallMs)}${s.enqueueMs > 0 ? ` (+ ${duration(s.enqueueMs)} generating and enqueueing)` : ''}`]);
  rows.push(['throughput', `${int(s.eventsPerSecond)} events/s`]);
  if (s.processed > 0) rows.push(['CPU per event', `${((s.cpuMs * 1000) / s.processed).toFixed(1)} µs (all threads; ${int(s.cpuMs)} ms in all)`]);
  out.push(columns(rows));
  out.push('');
  if (s.check === null) {
    out.push(`Consistency check: skipped, the queue still holds ${int(q?.remaining ?? s.events - s.processed)} events.`);
    out.push('Run the same command again to resume from the queue.');
  } else {
    out.push(`Consistency check: ${s.check.ok ? 'PASSED' : 'FAILED'}`);
    const lines = [['', 'check', 'expected', 'actual']].concat(
      s.check.lines.map((l) => [l.ok ? 'ok' : 'FAIL', l.name, String(l.expected), String(l.actual)]),
    );
    out.push(columns(lines));
  }
  return out.join('\n');
}
