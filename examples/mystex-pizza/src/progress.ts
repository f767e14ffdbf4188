/**
 * Live progress while the pipeline runs. On a terminal: one line redrawn in place (a bar, events/s,
 * acked, failed, per-stage load). Elsewhere (CI, a pipe, a log file): a plain line every few
 * seconds, since carriage returns would only litter the file.
 *
 * Log lines and the progress line share stderr; `logStream` clears the progress line before a log
 * line is written and redraws it after, so neither garbles the other.
 */
import { duration, int, pct } from './format.js';

export interface ProgressSample {
  /** Events finished in this run: acked as successful or failed. */
  done: number;
  /** Events this run has to process (what the queue held when it started). */
  total: number;
  failed: number;
  /** Processor threads' busy time over wall time (0..1). */
  processorLoad: number;
  /** Per batcher, its worker's busy time over wall time (0..1). */
  batcherLoad: Record<string, number>;
  /** Taken into the pipeline and not acked yet. */
  inFlight: number;
}

export interface ProgressOptions {
  stream: NodeJS.WriteStream | NodeJS.WritableStream;
  tty: boolean;
  sample: () => ProgressSample;
  /** Redraw period on a terminal; plain lines come every `plainEveryMs`. */
  ttyEveryMs?: number;
  plainEveryMs?: number;
}

const BAR = 24;

export function bar(ratio: number, width = BAR): string {
  const filled = Math.max(0, Math.min(width, Math.round(ratio * width)));
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

export function describeSample(s: ProgressSample, elapsedMs: number, perSecond: number): string {
  const loads = Object.entries(s.batcherLoad)
    .map(([name, load]) => `${name} ${pct(load)}`)
    .join(' ');
  // Most telling first: a narrow terminal cuts the end of the line.
  return (
    `${pct(s.total > 0 ? s.done / s.total : 1)} ${int(s.done)}/${int(s.total)} · ${int(perSecond)} ev/s · ${duration(elapsedMs)} · ` +
    `acked ${int(s.done - s.failed)} · failed ${int(s.failed)} · load: processors ${pct(s.processorLoad)}${loads ? ` ${loads}` : ''} · ` +
    `in flight ${int(s.inFlight)}`
  );
}

export class Progress {
  #o: Required<ProgressOptions>;
  #timer?: NodeJS.Timeout;
  #started = performance.now();
  #line = '';
  /** Recent (time, done) points for a rate over the last few seconds, not since the start. */
  #points: [number, number][] = [];

  constructor(options: ProgressOptions) {
    this.#o = { ttyEveryMs: 200, plainEveryMs: 5000, ...options };
  }

  start(): void {
    this.#started = performance.now();
    this.#points = [[this.#started, 0]];
    this.#timer = setInterval(() => this.#tick(), this.#o.tty ? this.#o.ttyEveryMs : this.#o.plainEveryMs);
    this.#timer.unref();
  }

  /** Stops redrawing and leaves the last line on screen (terminal) or prints a final one. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#tick();
    if (this.#o.tty && this.#line) this.#o.stream.write('\n');
    this.#line = '';
  }

  /** A writable for the logger: log lines interleave cleanly with the live line. */
  get logStream(): { write(chunk: string): boolean } {
    return {
      write: (chunk: string) => {
        const { stream, tty } = this.#o;
        if (tty && this.#line) stream.write('\r\x1b[K');
        stream.write(chunk);
        if (tty && this.#line) stream.write(this.#line);
        return true;
      },
    };
  }

  #tick(): void {
    const now = performance.now();
    const s = this.#o.sample();
    this.#points.push([now, s.done]);
    while (this.#points.length > 2 && now - this.#points[0]![0] > 3000) this.#points.shift();
    const [t0, d0] = this.#points[0]!;
    const perSecond = now > t0 ? ((s.done - d0) * 1000) / (now - t0) : 0;
    const text = describeSample(s, now - this.#started, perSecond);
    if (this.#o.tty) {
      const columns = (this.#o.stream as NodeJS.WriteStream).columns ?? 120;
      const line = `${bar(s.total > 0 ? s.done / s.total : 1)} ${text}`;
      this.#line = line.length > columns - 1 ? line.slice(0, columns - 1) : line;
      this.#o.stream.write(`\r\x1b[K${this.#line}`);
    } else {
      this.#o.stream.write(`[progress] ${text}\n`);
    }
  }
}
