import cliProgress from 'cli-progress';
import { invalidOption, onlyKeys, plainObject } from '@throughway/workers/internal';
import type { Pipeline } from './pipeline.js';
import type { PipelineStats } from './stats.js';
import { PipelineWatch, type FailureCount } from './watch.js';

/** Where progress is written: any writable; `isTTY` and `columns` decide the live bar. */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface ProgressOptions {
  /** Messages the run has to process (a number, or a function asked at each redraw): adds a bar, a percentage and an ETA. */
  total?: number | (() => number);
  /** Where to write. @default process.stderr */
  stream?: ProgressStream;
  /** Milliseconds between plain lines when the stream is not a terminal. @default 5000 */
  interval?: number;
  /** Print the summary when the pipeline stops. @default true */
  summary?: boolean;
}

/** The end-of-run figures, as printed by the summary. */
export interface ProgressSummary {
  pipeline: string;
  /** The pipeline's wall time, start to stop, in milliseconds. */
  wallMs: number;
  /** Events the producers emitted. */
  in: number;
  acked: number;
  failed: number;
  /** Acked (successfully or not) per second of wall time. */
  perSecond: number;
  failures: FailureCount[];
  /** Messages taken in and never acked (a `stop()` that timed out). */
  unacked: number;
}

/** A terminal redraws at most this often (cli-progress's `fps`). */
const TTY_FPS = 10;
const BAR_WIDTH = 20;

/**
 * Live progress of a pipeline, on a terminal as one bar redrawn in place (through cli-progress,
 * at most every 100 ms and only when the text changed), elsewhere as a plain line every
 * `interval`. Stops itself, prints a summary and leaves no timer when the pipeline stops.
 */
export class Progress {
  readonly #pipeline: Pipeline;
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  readonly #total: () => number | undefined;
  readonly #printSummary: boolean;
  readonly #watch: PipelineWatch;
  readonly #bar: cliProgress.SingleBar;
  #summary?: ProgressSummary;
  #resolveFinished!: (summary: ProgressSummary) => void;
  /** Resolves with the summary once progress has stopped (with the pipeline, or by `stop()`). */
  readonly finished = new Promise<ProgressSummary>((resolve) => (this.#resolveFinished = resolve));

  constructor(pipeline: Pipeline, options: ProgressOptions = {}) {
    const o = checkOptions(options);
    this.#pipeline = pipeline;
    this.#stream = o.stream ?? process.stderr;
    this.#tty = this.#stream.isTTY === true;
    const total = o.total;
    this.#total = typeof total === 'function' ? total : () => total;
    this.#printSummary = o.summary ?? true;
    this.#watch = new PipelineWatch(pipeline);
    this.#bar = new cliProgress.SingleBar({
      stream: this.#stream as NodeJS.WritableStream,
      fps: TTY_FPS,
      noTTYOutput: true,
      notTTYSchedule: o.interval ?? 5000,
      format: () => this.line(),
      // The line is built whole by line(); cli-progress truncates it to the terminal's width.
      linewrap: false,
      hideCursor: false,
    });
    this.#bar.start(0, 0);
    if (pipeline.state === 'stopped') queueMicrotask(() => this.stop());
    else void pipeline.whenStopped().then(() => this.stop());
  }

  /** The progress text as drawn now (without the bar on a non-terminal). */
  line(): string {
    const s = this.#pipeline.stats();
    const done = s.acks.successful + s.acks.failed;
    const total = this.#total();
    const rate = s.rates.ackedPerSecond + s.rates.failedPerSecond;
    const parts: string[] = [];
    if (total !== undefined && total > 0) {
      const ratio = Math.min(1, done / total);
      parts.push(`${this.#tty ? `${bar(ratio)} ` : ''}${pct(ratio)} ${int(done)}/${int(total)}`);
    } else {
      parts.push(`${int(done)} done`);
    }
    parts.push(`${int(rate)} msg/s`);
    if (total !== undefined && total > done) parts.push(`ETA ${rate > 0 ? duration(((total - done) / rate) * 1000) : '?'}`);
    parts.push(`acked ${int(s.acks.successful)}`, `failed ${int(s.acks.failed)}`, duration(s.elapsedMs));
    const loads = this.#watch.loads(s);
    const batchers = Object.entries(loads.batchers).map(([name, load]) => ` ${name} ${pct(load)}`);
    parts.push(`load: processors ${pct(loads.processors)}${batchers.join('')}`, `in flight ${int(s.unacked)}`);
    if (this.#pipeline.state === 'draining') parts.push('draining');
    const text = parts.join(' · ');
    return this.#tty ? text : `[progress] ${this.#pipeline.name} ${text}`;
  }

  /**
   * A writable for a logger sharing the stream: on a terminal each line is written above the
   * bar (the bar is cleared, the line written, the bar redrawn), so neither garbles the other.
   */
  get logStream(): { write(chunk: string): boolean } {
    return {
      write: (chunk: string) => {
        if (!this.#tty || this.#summary) return this.#stream.write(chunk);
        this.#stream.write('\r\x1b[K');
        this.#stream.write(chunk);
        // cli-progress restores the cursor it saved at start() when it stops: save it again
        // here, on the bar's new line, or that restore would jump back over the log lines.
        this.#stream.write(`\x1b7${this.line()}`);
        return true;
      },
    };
  }

  /**
   * Stops redrawing (idempotent), prints the summary and returns it. Called by itself when the
   * pipeline stops; call it to stop earlier.
   */
  stop(): ProgressSummary {
    if (this.#summary) return this.#summary;
    this.#bar.stop();
    const s = this.#pipeline.stats();
    this.#watch.close();
    const done = s.acks.successful + s.acks.failed;
    this.#summary = {
      pipeline: this.#pipeline.name,
      wallMs: s.elapsedMs,
      in: s.producers.emitted,
      acked: s.acks.successful,
      failed: s.acks.failed,
      perSecond: s.elapsedMs > 0 ? (done * 1000) / s.elapsedMs : 0,
      failures: this.#watch.failures(),
      unacked: s.unacked,
    };
    if (this.#printSummary) this.#stream.write(renderSummary(this.#summary));
    this.#resolveFinished(this.#summary);
    return this.#summary;
  }
}

/**
 * Shows live progress of `pipeline` until it stops, then a summary (totals, failures by reason,
 * wall time, msg/s). On a terminal: a bar redrawn in place; elsewhere a plain line per `interval`.
 *
 * @example
 * const pipeline = await Pipeline.start(options)
 * const bar = progress(pipeline, { total: 200_000 })
 * // ... pipeline.stop() ends the bar and prints the summary
 * const { perSecond, failures } = await bar.finished
 */
export function progress(pipeline: Pipeline, options: ProgressOptions = {}): Progress {
  return new Progress(pipeline, options);
}

/** The summary as printed: one line of totals, then failures by reason (the ten most frequent). */
export function renderSummary(s: ProgressSummary): string {
  const lines = [
    `${s.pipeline}: ${int(s.acked + s.failed)} messages in ${duration(s.wallMs)} (${int(s.perSecond)} msg/s): ${int(s.acked)} acked, ${int(s.failed)} failed` +
      `${s.unacked > 0 ? `, ${int(s.unacked)} left unacked` : ''} (${int(s.in)} emitted by the producers)`,
  ];
  if (s.failures.length > 0) {
    lines.push('  failures by reason:');
    for (const f of s.failures.slice(0, 10)) lines.push(`  ${int(f.count).padStart(10)}  ${f.reason}`);
    if (s.failures.length > 10) lines.push(`  ${''.padStart(10)}  (and ${s.failures.length - 10} more reasons)`);
  }
  return `${lines.join('\n')}\n`;
}

function checkOptions(options: ProgressOptions): ProgressOptions {
  onlyKeys('progress', plainObject('progress', options), ['total', 'stream', 'interval', 'summary']);
  const { total, stream, interval, summary } = options;
  if (total !== undefined && typeof total !== 'function' && !(Number.isSafeInteger(total) && total >= 0)) invalidOption('progress.total', 'an integer from 0 up, or a function', total);
  if (stream !== undefined && (stream === null || typeof (stream as { write?: unknown }).write !== 'function')) invalidOption('progress.stream', 'a writable stream', stream);
  if (interval !== undefined && !(Number.isInteger(interval) && interval >= 100 && interval <= 3_600_000)) invalidOption('progress.interval', 'an integer from 100 to 3600000 (ms)', interval);
  if (summary !== undefined && typeof summary !== 'boolean') invalidOption('progress.summary', 'a boolean', summary);
  return options;
}

function bar(ratio: number): string {
  const filled = Math.round(ratio * BAR_WIDTH);
  return '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (ratio: number): string => `${Math.round(ratio * 100)}%`;

function duration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
