import type { ResolvedBackoff } from './options.js';

/**
 * Reconnect delays, capped at `maxMs`. 'rand_exp' (Broadway's default) draws each delay from
 * [min(prev, maxMs / 3), min(prev × 3, maxMs)], so producers that lost one broker together do
 * not come back in step; 'exp' doubles from `minMs`; 'rand' is uniform in [minMs, maxMs].
 * `reset()` after a connection that worked.
 *
 * @example
 * const backoff = new Backoff({ minMs: 1000, maxMs: 30000, type: 'rand_exp' })
 * setTimeout(reconnect, backoff.next())
 */
export class Backoff {
  readonly #o: ResolvedBackoff;
  #prev: number | undefined;

  constructor(options: ResolvedBackoff) {
    this.#o = options;
  }

  next(): number {
    const { minMs, maxMs, type } = this.#o;
    let delay: number;
    if (type === 'rand') delay = uniform(minMs, maxMs);
    else if (type === 'exp') delay = this.#prev === undefined ? minMs : Math.min(maxMs, this.#prev * 2);
    else {
      const prev = this.#prev ?? minMs;
      const lower = Math.max(minMs, Math.floor(maxMs / 3));
      delay = this.#prev === undefined ? minMs : uniform(Math.min(prev, lower), Math.min(Math.max(prev * 3, 1), maxMs));
    }
    this.#prev = delay;
    return delay;
  }

  reset(): void {
    this.#prev = undefined;
  }
}

function uniform(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}
