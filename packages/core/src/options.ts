import { availableParallelism } from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ThroughwayError } from '@throughway/workers';
import { integerOption as integer, invalidOption as invalid, onlyKeys, plainObject, toModuleUrl } from '@throughway/workers/internal';
import type { ThroughwayMessage } from '@throughway/workers';
import type { Producer } from './producer.js';

export type Runtime = 'inline' | 'threads';

export interface RateLimitingOptions {
  allowedMessages: number;
  interval: number;
}

export interface ProcessorOptions {
  /** Processors running at once: threads in the pool, or concurrent calls inline. Default: cores. */
  concurrency?: number;
  /** Default 10 inline; on threads chosen from the handler's measured cost unless set. */
  maxDemand?: number;
  /** Default `floor(maxDemand / 2)`. */
  minDemand?: number;
  /** Messages with the same key go to the same processor, in order. Runs on the main thread. */
  partitionBy?: (message: ThroughwayMessage) => unknown;
  /** Default 'threads'. */
  runtime?: Runtime;
  /** Threads only: per-thread heap limits, passed to each worker thread. */
  resourceLimits?: ResourceLimits;
}

export interface BatcherOptions {
  concurrency?: number;
  batchSize?: number;
  batchTimeout?: number;
  maxDemand?: number;
}

export interface PipelineOptions {
  name: string;
  /** The handler module: a file URL or an absolute path (`.js`, or `.ts` with tsx installed). */
  handlers: string | URL;
  producer: {
    module: Producer | ((index: number) => Producer);
    concurrency?: number;
    transformer?: (event: any) => ThroughwayMessage;
    rateLimiting?: RateLimitingOptions;
  };
  processors: { default: ProcessorOptions };
  batchers?: Record<string, BatcherOptions>;
  context?: unknown;
  shutdownTimeout?: number;
  logger?: Logger;
}

export interface ResolvedProcessor {
  concurrency: number;
  maxDemand: number;
  minDemand: number;
  /** False when the threads runtime may choose the demand from measured cost. */
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

/** Defaults, in one place; Broadway's where Broadway has one. */
export const DEFAULTS = Object.freeze({
  producerConcurrency: 1,
  inlineMaxDemand: 10,
  threadsInitialMaxDemand: 200,
  batchConcurrency: 1,
  batchSize: 100,
  batchTimeout: 1000,
  shutdownTimeout: 30_000,
  runtime: 'threads' as Runtime,
});

function fn(path: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') invalid(path, 'a function', value);
}

function rateLimiting(path: string, value: unknown): RateLimitingOptions | undefined {
  if (value === undefined) return undefined;
  const r = plainObject(path, value);
  onlyKeys(path, r, ['allowedMessages', 'interval']);
  if (r.allowedMessages === undefined) invalid(`${path}.allowedMessages`, 'an integer from 1 and up', undefined);
  if (r.interval === undefined) invalid(`${path}.interval`, 'an integer from 1 and up (milliseconds)', undefined);
  return { allowedMessages: integer(`${path}.allowedMessages`, r.allowedMessages, 0, 1), interval: integer(`${path}.interval`, r.interval, 0, 1) };
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

/** Checks every option before anything starts; errors name the option path and the value. */
export function resolveOptions(input: unknown): ResolvedOptions {
  const o = plainObject('options', input);
  onlyKeys('', o, ['name', 'handlers', 'producer', 'processors', 'batchers', 'context', 'shutdownTimeout', 'logger']);
  if (typeof o.name !== 'string' || o.name === '') invalid('name', 'a non-empty string', o.name);
  const handlers = handlersUrl(o.handlers);

  const p = plainObject('producer', o.producer);
  onlyKeys('producer', p, ['module', 'concurrency', 'transformer', 'rateLimiting']);
  const producerConcurrency = integer('producer.concurrency', p.concurrency, DEFAULTS.producerConcurrency, 1);
  fn('producer.transformer', p.transformer);

  const processors = plainObject('processors', o.processors);
  onlyKeys('processors', processors, ['default']);
  const d = plainObject('processors.default', processors.default);
  onlyKeys('processors.default', d, ['concurrency', 'maxDemand', 'minDemand', 'partitionBy', 'runtime', 'resourceLimits']);
  const runtime = d.runtime ?? DEFAULTS.runtime;
  if (runtime !== 'inline' && runtime !== 'threads') invalid('processors.default.runtime', "'inline' or 'threads'", d.runtime);
  const demandSetByUser = d.maxDemand !== undefined;
  const maxDemand = integer('processors.default.maxDemand', d.maxDemand, runtime === 'inline' ? DEFAULTS.inlineMaxDemand : DEFAULTS.threadsInitialMaxDemand, 1);
  const minDemand = integer('processors.default.minDemand', d.minDemand, Math.floor(maxDemand / 2), 0);
  if (minDemand >= maxDemand) invalid('processors.default.minDemand', `an integer below maxDemand (${maxDemand})`, d.minDemand);
  fn('processors.default.partitionBy', d.partitionBy);
  if (d.resourceLimits !== undefined) plainObject('processors.default.resourceLimits', d.resourceLimits);

  const batchers: ResolvedBatcher[] = [];
  if (o.batchers !== undefined) {
    const b = plainObject('batchers', o.batchers);
    for (const [name, value] of Object.entries(b)) {
      const path = `batchers.${name}`;
      const opts = plainObject(path, value);
      onlyKeys(path, opts, ['concurrency', 'batchSize', 'batchTimeout', 'maxDemand']);
      const batchSize = integer(`${path}.batchSize`, opts.batchSize, DEFAULTS.batchSize, 1);
      batchers.push({
        name,
        concurrency: integer(`${path}.concurrency`, opts.concurrency, DEFAULTS.batchConcurrency, 1),
        batchSize,
        batchTimeout: integer(`${path}.batchTimeout`, opts.batchTimeout, DEFAULTS.batchTimeout, 0),
        maxDemand: integer(`${path}.maxDemand`, opts.maxDemand, batchSize, 1),
      });
    }
  }

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
      concurrency: integer('processors.default.concurrency', d.concurrency, availableParallelism(), 1),
      maxDemand,
      minDemand,
      demandSetByUser: demandSetByUser || runtime === 'inline',
      partitionBy: d.partitionBy as ResolvedProcessor['partitionBy'],
      runtime,
      resourceLimits: d.resourceLimits as ResourceLimits | undefined,
    },
    batchers,
    context: o.context,
    shutdownTimeout: integer('shutdownTimeout', o.shutdownTimeout, DEFAULTS.shutdownTimeout, 0),
    logger: o.logger as Logger | undefined,
  };
  if (runtime === 'threads') checkCloneable(resolved.context);
  return resolved;
}

function checkCloneable(context: unknown): void {
  try {
    structuredClone(context);
  } catch (error) {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Expected \`context\` to be plain data that can be copied into worker threads: ${(error as Error).message}`, { details: { path: 'context' } });
  }
}
