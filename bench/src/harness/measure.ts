import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Measurement helpers shared by the scenarios. Nothing here imports the engine: the pipeline
 * scenarios hand in `createMessage`, so the harness builds whatever state the engine is in.
 */

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function rssMiB(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}

let gcFn: (() => void) | undefined;
/**
 * Runs a full GC. The harness does not start children with --expose-gc (worker threads inherit
 * execArgv and reject that flag), so the function is fetched through V8's flags on first use.
 */
export function gc(): void {
  if (!gcFn) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (typeof exposed === 'function') gcFn = exposed;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `12,345 msg/s` style, for progress lines. */
export function fmtRate(perSecond: number): string {
  return `${Math.round(perSecond).toLocaleString('en-US')}/s`;
}

export function log(scenario: string, text: string): void {
  console.log(`  [${scenario}] ${text}`);
}

type CreateMessage = (data: unknown, options: { acknowledger: { module: CountingAck; ref: unknown } }) => unknown;

/**
 * Acknowledger that counts what it is given and resolves waiters once a total is reached.
 * Methods are arrow functions so the engine may call them unbound.
 */
export class CountingAck {
  /** It counts and reads statuses, never `data`: like every built-in source, it says so. */
  readonly idsOnly: boolean;
  successful = 0;
  failed = 0;
  calls = 0;
  firstFailure: unknown = undefined;
  private waiters: { target: number; resolve: () => void }[] = [];

  /** `idsOnly: false` measures the default: processed data comes back for every acked message. */
  constructor(options: { idsOnly?: boolean } = {}) {
    this.idsOnly = options.idsOnly ?? true;
  }

  get total(): number {
    return this.successful + this.failed;
  }

  ack = (_ref: unknown, successful: unknown[], failed: unknown[]): void => {
    this.calls++;
    this.successful += successful.length;
    this.failed += failed.length;
    if (failed.length && this.firstFailure === undefined) this.firstFailure = (failed[0] as { status?: unknown }).status;
    if (this.waiters.length) {
      const total = this.total;
      this.waiters = this.waiters.filter((w) => {
        if (total >= w.target) {
          w.resolve();
          return false;
        }
        return true;
      });
    }
  };

  /** Resolves once `target` messages in all were acked; rejects after `timeoutMs`. */
  waitFor(target: number, timeoutMs = 120_000): Promise<void> {
    if (this.total >= target) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.total} of ${target} messages acked after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        target,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

interface Controller {
  push(events: unknown[]): void;
}

/**
 * A producer that emits nothing until `release(n)`: the pipeline (and its threads) start first,
 * then the clock starts and n messages go out as demand allows. Demand it cannot meet is
 * remembered and met later through the controller, never beyond the demand received.
 */
export class GatedProducer {
  private budget = 0;
  private unmet = 0;
  private next = 0;
  private controller: Controller | undefined;

  constructor(
    private readonly payloads: readonly unknown[],
    private readonly createMessage: CreateMessage,
    private readonly ack: CountingAck,
    private readonly ref: unknown = 'bench',
  ) {}

  init = (controller: Controller): void => {
    this.controller = controller;
  };

  private make(n: number): unknown[] {
    const out = new Array<unknown>(n);
    const p = this.payloads;
    for (let i = 0; i < n; i++) out[i] = this.createMessage(p[this.next++ % p.length], { acknowledger: { module: this.ack, ref: this.ref } });
    return out;
  }

  handleDemand = (demand: number): unknown[] => {
    const now = Math.min(demand, this.budget);
    this.budget -= now;
    this.unmet += demand - now;
    return this.make(now);
  };

  /** Allow n more messages; emits at once whatever outstanding demand covers. */
  release(n: number): void {
    this.budget += n;
    const now = Math.min(this.unmet, this.budget);
    if (now > 0) {
      if (!this.controller) throw new Error('GatedProducer: init() was not called, cannot push');
      this.unmet -= now;
      this.budget -= now;
      // push in slices so no single push is enormous
      for (let left = now; left > 0; left -= 10_000) this.controller.push(this.make(Math.min(left, 10_000)));
    }
  }
}

/** A producer that meets every demand in full, forever (the memory scenario). */
export class EndlessProducer {
  emitted = 0;
  private next = 0;
  constructor(
    private readonly payloads: string[],
    private readonly createMessage: CreateMessage,
    private readonly ack: CountingAck,
  ) {}

  handleDemand = (demand: number): unknown[] => {
    const out = new Array<unknown>(demand);
    const p = this.payloads;
    for (let i = 0; i < demand; i++) out[i] = this.createMessage(p[this.next++ % p.length]!, { acknowledger: { module: this.ack, ref: 'endless' } });
    this.emitted += demand;
    return out;
  };
}

/**
 * Timed rounds through a started pipeline fed by a GatedProducer: a warm-up round, then `rounds`
 * rounds of `n` messages each, each timed from release to the last ack. Returns msg/s per round.
 */
export async function timedRounds(producer: GatedProducer, ack: CountingAck, opts: { warmup: number; n: number; rounds: number; label?: string }): Promise<number[]> {
  if (opts.warmup > 0) {
    const target = ack.total + opts.warmup;
    producer.release(opts.warmup);
    await ack.waitFor(target);
  }
  const rates: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const target = ack.total + opts.n;
    const t0 = performance.now();
    producer.release(opts.n);
    await ack.waitFor(target);
    const seconds = (performance.now() - t0) / 1000;
    rates.push(opts.n / seconds);
    if (opts.label) log(opts.label, `round ${r + 1}: ${opts.n.toLocaleString('en-US')} msgs in ${seconds.toFixed(3)} s = ${fmtRate(opts.n / seconds)}`);
  }
  return rates;
}
