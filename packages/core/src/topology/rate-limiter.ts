import { ThroughwayError } from '@throughway/workers';
import { describeValue } from '@throughway/workers/internal';
import type { RateLimitingOptions } from '../options.js';
import { rangeText, specOf } from '../option-schema.js';

export interface RateLimitUpdate {
  allowedMessages?: number;
  interval?: number;
  /** Apply now and refill the counter at once, instead of at the next interval. */
  reset?: boolean;
}

/**
 * One counter shared by all producers, refilled to `allowedMessages` every `interval`. Demand
 * that finds it empty waits; `onRefill` replays it. An update is in force at once (as
 * Broadway's `get_rate_limiting` shows), but the counter only takes it at the next refill.
 */
export class RateLimiter {
  #allowed: number;
  #interval: number;
  #tokens: number;
  #timer: NodeJS.Timeout | undefined;
  #onRefill: () => void;
  #throttled = 0;

  constructor(options: RateLimitingOptions, onRefill: () => void) {
    this.#allowed = options.allowedMessages;
    this.#interval = options.interval;
    this.#tokens = options.allowedMessages;
    this.#onRefill = onRefill;
  }

  start(): void {
    this.#schedule();
  }

  /** Takes up to `wanted` tokens; returns how many were granted. */
  take(wanted: number): number {
    const granted = Math.min(wanted, this.#tokens);
    this.#tokens -= granted;
    if (granted < wanted) this.#throttled++;
    return granted;
  }

  /** How many times demand found the counter short and (partly) waited for a refill. */
  get throttled(): number {
    return this.#throttled;
  }

  get(): RateLimitingOptions {
    return { allowedMessages: this.#allowed, interval: this.#interval };
  }

  update(update: RateLimitUpdate): void {
    if (update === null || typeof update !== 'object' || Array.isArray(update)) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `Expected updateRateLimiting to get { allowedMessages?, interval?, reset? }, got ${describeValue(update)}`);
    }
    for (const key of Object.keys(update)) {
      if (key !== 'allowedMessages' && key !== 'interval' && key !== 'reset') {
        throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `Unknown key \`${key}\` in updateRateLimiting; the known ones are allowedMessages, interval, reset`, { details: { path: key } });
      }
    }
    if (update.reset !== undefined && typeof update.reset !== 'boolean') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `Expected \`reset\` to be a boolean, got ${describeValue(update.reset)}`);
    }
    for (const key of ['allowedMessages', 'interval'] as const) {
      const v = update[key];
      const spec = specOf(`producer.rateLimiting.${key}`);
      if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < spec.min! || v > spec.max!)) {
        throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `Expected \`${key}\` to be ${rangeText(spec)}, got ${describeValue(v)}`, { details: { path: key } });
      }
    }
    this.#allowed = update.allowedMessages ?? this.#allowed;
    this.#interval = update.interval ?? this.#interval;
    if (update.reset) {
      clearTimeout(this.#timer);
      this.#refill();
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => this.#refill(), this.#interval);
  }

  #refill(): void {
    this.#tokens = this.#allowed;
    this.#schedule();
    this.#onRefill();
  }
}
