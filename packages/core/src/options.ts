import { availableParallelism } from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ThroughwayError } from '@throughway/workers';
import { invalidOption as invalid, onlyKeys, plainObject, toModuleUrl } from '@throughway/workers/internal';
import { keysUnder, rangeText, specOf } from './option-schema.js';
import type { ThroughwayMessage } from '@throughway/workers';
import type { Producer } from './producer.js';
import { RUNTIMES } from './runtime/registry.js';

export type Runtime = 'inline' | 'threads';

export interface RateLimitingOptions {
  /**
   * Messages allowed per interval, across all producers.
   * Range 1..1e9.
   */
  allowedMessages: number;
  /**
   * The interval, in ms.
   * Range 1..2^31-1.
   */
  interval: number;
}

export interface ProcessorOptions {
  /**
   * Processors running at once: threads in the pool, or concurrent calls inline.
   * Range 1..max(256, 4 × cores).
   * @default os.availableParallelism()
   */
  concurrency?: number;
  /**
   * Messages a processor asks for at a time; set, it is obeyed.
   * Range 1..1e6.
   * @default 10 inline; threads: adaptive from 200
   */
  maxDemand?: number;
  /**
   * Outstanding demand at which a processor asks again; calls hold at most maxDemand - minDemand
   * messages.
   * Range 0..maxDemand - 1.
   * @default floor(maxDemand / 2)
   */
  minDemand?: number;
  /** Messages with the same key go to the same processor, in order. Runs on the main thread. */
  partitionBy?: (message: ThroughwayMessage) => unknown;
  /**
   * Where handlers run: worker threads, or the main thread (tests, I/O-light handlers).
   * @default 'threads'
   */
  runtime?: Runtime;
  /**
   * Threads only: per-thread heap limits (`maxOldGenerationSizeMb`, `maxYoungGenerationSizeMb`,
   * `codeRangeSizeMb` up to 1048576; `stackSizeMb` up to 1024; all above 0). Without
   * `maxYoungGenerationSizeMb`, the processor threads start with V8's own young generation and are
   * replaced once (each after its tasks end, `teardown` then `setup` on the new one) by threads
   * with a 10 MB one when synchronous handlers measure 30 µs a message or more with little data
   * (≤ 1 KB of string, byte or number data in, ≤ 128 bytes of processed data out, a message).
   */
  resourceLimits?: ResourceLimits;
}

export interface BatcherOptions {
  /**
   * Batch slots, each a thread running one batch at a time.
   * Range 1..max(256, 4 × cores).
   * @default 1
   */
  concurrency?: number;
  /**
   * Messages per batch.
   * Range 1..1e6.
   * @default 100
   */
  batchSize?: number;
  /**
   * How long a batch waits to fill after its first message, in ms.
   * Range 0..2^31-1.
   * @default 1000
   */
  batchTimeout?: number;
  /**
   * Messages in full batches the batcher takes in, beyond two batches per slot, before the
   * processors are held back. Messages waiting in partial batches do not count (as in Broadway).
   * Range 1..1e6.
   * @default batchSize
   */
  maxDemand?: number;
}

/**
 * A pipeline's options, checked as a whole before anything starts (`OPTION_SCHEMA` holds every
 * option's type, range and default). `Context`: the type of `context`, handed to every callback
 * (`definePipeline<Context>` in the handler module).
 */
export interface PipelineOptions<Context = unknown> {
  /** The pipeline name, in logs and telemetry. */
  name: string;
  /** The handler module: a file URL or an absolute path (`.js`, or `.ts` with tsx installed). */
  handlers: string | URL;
  producer: {
    /** A producer, or a factory `(index) => producer` (required when concurrency > 1). */
    module: Producer | ((index: number) => Producer);
    /**
     * Producers running at once.
     * Range 1..256.
     * @default 1
     */
    concurrency?: number;
    /** Turns each event into a message; a throw is logged and counted, the event dropped. */
    transformer?: (event: any) => ThroughwayMessage;
    /** One counter across all producers. */
    rateLimiting?: RateLimitingOptions;
  };
  processors: { default: ProcessorOptions };
  /** Batchers by name (a plain object). */
  batchers?: Record<string, BatcherOptions>;
  /** Handed to every callback; plain data with the threads runtime. */
  context?: Context;
  /**
   * The drain budget of `stop()`, in ms.
   * Range 0..2^31-1.
   * @default 30000
   */
  shutdownTimeout?: number;
  /** A pino logger; by default pino at 'warn' on stderr. */
  logger?: Logger;
}

export interface ResolvedProcessor {
  concurrency: number;
  maxDemand: number;
  minDemand: number;
  /** False when a runtime with adaptive demand may choose it from measured cost. */
  demandSetByUser: boolean;
  partitionBy?: (message: ThroughwayMessage) => unknown;
  runtime: Runtime;
  resourceLimits?: ResourceLimits;
}

export interface ResolvedBatcher {
  name: string;
  concurrency: number;
  batchSize: number;
  batchTimeout: number;
  maxDemand: number;
}

export interface ResolvedOptions {
  name: string;
  handlers: string;
  producer: {
    factory: (index: number) => Producer;
    concurrency: number;
    transformer?: (event: unknown) => ThroughwayMessage;
    rateLimiting?: RateLimitingOptions;
  };
  processor: ResolvedProcessor;
  batchers: ResolvedBatcher[];
  context: unknown;
  shutdownTimeout: number;
  logger?: Logger;
}

/** Defaults, in one place; Broadway's where Broadway has one (see OPTION_SCHEMA for ranges). */
export const DEFAULTS = Object.freeze({
  producerConcurrency: 1,
  batchConcurrency: 1,
  batchSize: 100,
  batchTimeout: 1000,
  shutdownTimeout: 30_000,
  runtime: 'threads' as Runtime,
});

function fn(path: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') invalid(path, 'a function', value);
}

/** A numeric option within its schema range, or `fallback` when absent. */
function numeric(path: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const spec = specOf(path);
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (spec.type !== 'integer' || Number.isSafeInteger(value)) &&
    (spec.minExclusive ? value > spec.min! : value >= spec.min!) &&
    value <= spec.max!;
  if (!ok) invalid(path, rangeText(spec), value);
  return value as number;
}

function required(path: string, value: unknown): unknown {
  if (value === undefined) invalid(path, rangeText(specOf(path)), undefined);
  return value;
}

/** A plain `{}` object: not an array, a Map or a class instance, whose keys would be lost. */
function plain(path: string, value: unknown): Record<string, unknown> {
  const o = plainObject(path, value);
  const proto = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) invalid(path, 'a plain object ({ ... })', value);
  return o;
}

function rateLimiting(path: string, value: unknown): RateLimitingOptions | undefined {
  if (value === undefined) return undefined;
  const r = plain(path, value);
  onlyKeys(path, r, keysUnder(path));
  return {
    allowedMessages: numeric(`${path}.allowedMessages`, required(`${path}.allowedMessages`, r.allowedMessages), 0),
    interval: numeric(`${path}.interval`, required(`${path}.interval`, r.interval), 0),
  };
}

function resourceLimits(path: string, value: unknown): ResourceLimits | undefined {
  if (value === undefined) return undefined;
  const r = plain(path, value);
  onlyKeys(path, r, keysUnder(path));
  const out: Record<string, number> = {};
  for (const key of Object.keys(r)) if (r[key] !== undefined) out[key] = numeric(`${path}.${key}`, r[key], 0);
  return out as ResourceLimits;
}

function handlersUrl(value: unknown): string {
  if (value instanceof URL) {
    if (value.protocol !== 'file:') invalid('handlers', 'a file URL or an absolute path', value.href);
    return value.href;
  }
  if (typeof value !== 'string' || !(value.startsWith('file:') || value.startsWith('/'))) invalid('handlers', 'a file URL or an absolute path', value);
  return toModuleUrl(value);
}

function producerFactory(value: unknown, concurrency: number): (index: number) => Producer {
  if (typeof value === 'function') return value as (index: number) => Producer;
  if (value === null || typeof value !== 'object' || typeof (value as Producer).handleDemand !== 'function') {
    invalid('producer.module', 'a producer (an object with handleDemand) or a factory (index) => producer', value);
  }
  if (concurrency > 1) invalid('producer.module', `a factory (index) => producer when \`producer.concurrency\` is ${concurrency}`, value);
  return () => value as Producer;
}

function batchersOf(value: unknown): ResolvedBatcher[] {
  if (value === undefined) return [];
  const b = plain('batchers', value);
  const batchers: ResolvedBatcher[] = [];
  for (const [name, options] of Object.entries(b)) {
    const path = `batchers.${name}`;
    const opts = plain(path, options);
    onlyKeys(path, opts, keysUnder('batchers.*'));
    const batchSize = numeric(`${path}.batchSize`, opts.batchSize, DEFAULTS.batchSize);
    batchers.push({
      name,
      concurrency: numeric(`${path}.concurrency`, opts.concurrency, DEFAULTS.batchConcurrency),
      batchSize,
      batchTimeout: numeric(`${path}.batchTimeout`, opts.batchTimeout, DEFAULTS.batchTimeout),
      maxDemand: numeric(`${path}.maxDemand`, opts.maxDemand, batchSize),
    });
  }
  return batchers;
}

/**
 * Checks every option before anything starts, against OPTION_SCHEMA: errors name the option
 * path, the allowed range or values, and the value received.
 */
export function resolveOptions(input: unknown): ResolvedOptions {
  const o = plainObject('options', input);
  onlyKeys('', o, keysUnder(''));
  if (typeof o.name !== 'string' || o.name === '') invalid('name', 'a non-empty string', o.name);
  const handlers = handlersUrl(o.handlers);

  const p = plainObject('producer', o.producer);
  if (typeof p.handleDemand === 'function' && p.module === undefined) {
    // `producer: fromIterable(rows)`: a producer given where its options belong.
    invalid('producer', '{ module: producer, concurrency?, transformer?, rateLimiting? }: wrap the producer as `producer: { module: fromIterable(...) }`', o.producer);
  }
  onlyKeys('producer', p, keysUnder('producer'));
  const producerConcurrency = numeric('producer.concurrency', p.concurrency, DEFAULTS.producerConcurrency);
  fn('producer.transformer', p.transformer);

  const processors = plainObject('processors', o.processors);
  onlyKeys('processors', processors, keysUnder('processors'));
  const d = plainObject('processors.default', processors.default);
  onlyKeys('processors.default', d, keysUnder('processors.default'));
  const runtimes = specOf('processors.default.runtime').values!;
  const runtime = (d.runtime ?? DEFAULTS.runtime) as Runtime;
  if (!runtimes.includes(runtime)) invalid('processors.default.runtime', runtimes.map((r) => `'${r}'`).join(' or '), d.runtime);
  const rules = RUNTIMES[runtime].rules;
  const demandSetByUser = d.maxDemand !== undefined;
  const maxDemand = numeric('processors.default.maxDemand', d.maxDemand, rules.defaultMaxDemand);
  const minDemand = numeric('processors.default.minDemand', d.minDemand, Math.floor(maxDemand / 2));
  if (minDemand >= maxDemand) invalid('processors.default.minDemand', `an integer below maxDemand (${maxDemand})`, d.minDemand);
  fn('processors.default.partitionBy', d.partitionBy);

  if (o.logger !== undefined && (o.logger === null || typeof (o.logger as Logger).warn !== 'function')) invalid('logger', 'a pino logger', o.logger);
  const resolved: ResolvedOptions = {
    name: o.name as string,
    handlers,
    producer: {
      factory: producerFactory(p.module, producerConcurrency),
      concurrency: producerConcurrency,
      transformer: p.transformer as ResolvedOptions['producer']['transformer'],
      rateLimiting: rateLimiting('producer.rateLimiting', p.rateLimiting),
    },
    processor: {
      concurrency: numeric('processors.default.concurrency', d.concurrency, availableParallelism()),
      maxDemand,
      minDemand,
      demandSetByUser,
      partitionBy: d.partitionBy as ResolvedProcessor['partitionBy'],
      runtime,
      resourceLimits: resourceLimits('processors.default.resourceLimits', d.resourceLimits),
    },
    batchers: batchersOf(o.batchers),
    context: o.context,
    shutdownTimeout: numeric('shutdownTimeout', o.shutdownTimeout, DEFAULTS.shutdownTimeout),
    logger: o.logger as Logger | undefined,
  };
  if (rules.copiesContext) checkCloneable(resolved.context);
  return resolved;
}

function checkCloneable(context: unknown): void {
  try {
    structuredClone(context);
  } catch (error) {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Expected \`context\` to be plain data that can be copied into worker threads: ${(error as Error).message}`, { details: { path: 'context' } });
  }
}
