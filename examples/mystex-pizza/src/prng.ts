/**
 * A small seeded PRNG (mulberry32). The demo must be reproducible: the same `--seed` gives the same
 * events, which is what lets a resumed run (after `kill -9`) be compared with an uninterrupted one,
 * and lets the consistency check recompute the expected tables without storing every event.
 */
export class Random {
  #state: number;

  constructor(seed: number) {
    // Mix the seed once (splitmix32-style) so that nearby seeds give unrelated streams.
    let s = (seed >>> 0) + 0x9e3779b9;
    s = Math.imul(s ^ (s >>> 16), 0x85ebca6b);
    s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
    this.#state = (s ^ (s >>> 16)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max] (both included). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}
