import { availableParallelism } from 'node:os';

/** The longest delay a Node.js timer takes: longer ones fire at once (with a warning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Upper bound of processor threads and batcher slots: each is a thread with its own heap;
 * more than this is a typo, not a tuning (an os with more cores than this is rare).
 */
export const MAX_THREADS = Math.max(256, availableParallelism() * 4);

export interface OptionSpec {
  /** `*` stands for a batcher's name. */
  path: string;
  type: 'string' | 'integer' | 'number' | 'function' | 'object' | 'url' | 'enum' | 'any';
  required?: boolean;
  /** Inclusive range of a numeric option. */
  min?: number;
  max?: number;
  /** `max` as the docs state it, where it is not a fixed number. */
  maxDoc?: string;
  /** `min` itself is excluded (a number that must be above it). */
  minExclusive?: boolean;
  /** The default as the JSDoc `@default` of the option states it. */
  default?: string;
  values?: readonly string[];
  doc: string;
}

/**
 * Every core option in one table: its path, type, range, default and doc. `resolveOptions`
 * checks against it (ranges and allowed values come from here only), and the `Range` and
 * `@default` lines of each option's JSDoc in options.ts are written from it by
 * `pnpm sync-option-docs` (scripts/sync-option-docs.ts; a test fails while they differ).
 */
export const OPTION_SCHEMA = [
  { path: 'name', type: 'string', required: true, doc: 'The pipeline name, in logs and telemetry.' },
  { path: 'handlers', type: 'url', required: true, doc: 'The handler module: a file URL or an absolute path.' },
  { path: 'producer.module', type: 'object', required: true, doc: 'A producer, or a factory (index) => producer.' },
  { path: 'producer.concurrency', type: 'integer', min: 1, max: 256, default: '1', doc: 'Producers running at once.' },
  { path: 'producer.transformer', type: 'function', doc: 'Turns each event into a message.' },
  { path: 'producer.rateLimiting.allowedMessages', type: 'integer', min: 1, max: 1_000_000_000, required: true, doc: 'Messages allowed per interval, across all producers.' },
  { path: 'producer.rateLimiting.interval', type: 'integer', min: 1, max: MAX_TIMER_MS, required: true, doc: 'The interval of the rate limit, in ms.' },
  { path: 'processors.default.concurrency', type: 'integer', min: 1, max: MAX_THREADS, maxDoc: 'max(256, 4 × cores)', default: 'os.availableParallelism()', doc: 'Processors running at once.' },
  { path: 'processors.default.maxDemand', type: 'integer', min: 1, max: 1_000_000, default: "10 inline; threads: adaptive from 200", doc: 'Messages a processor asks for at a time.' },
  { path: 'processors.default.minDemand', type: 'integer', min: 0, max: 999_999, maxDoc: 'maxDemand - 1', default: 'floor(maxDemand / 2)', doc: 'Demand left when a processor asks again; below maxDemand.' },
  { path: 'processors.default.partitionBy', type: 'function', doc: 'Same key, same processor, in order.' },
  { path: 'processors.default.runtime', type: 'enum', values: ['threads', 'inline'], default: "'threads'", doc: 'Where handlers run.' },
  { path: 'processors.default.resourceLimits', type: 'object', doc: 'Per-thread heap limits (threads only).' },
  // Whole megabytes: a fraction of a MB of heap or stack is a thread that dies at start-up.
  { path: 'processors.default.resourceLimits.maxOldGenerationSizeMb', type: 'integer', min: 1, max: 1_048_576, doc: 'Main heap of each thread, in MB.' },
  { path: 'processors.default.resourceLimits.maxYoungGenerationSizeMb', type: 'integer', min: 1, max: 1_048_576, doc: 'Young generation of each thread, in MB (unset: V8\'s, 10 MB once handlers measure CPU-heavy with little data a message).' },
  { path: 'processors.default.resourceLimits.codeRangeSizeMb', type: 'integer', min: 1, max: 1_048_576, doc: 'Code range of each thread, in MB.' },
  { path: 'processors.default.resourceLimits.stackSizeMb', type: 'integer', min: 1, max: 1024, doc: 'Stack of each thread, in MB.' },
  { path: 'batchers', type: 'object', doc: 'Batchers by name: a plain object.' },
  { path: 'batchers.*.concurrency', type: 'integer', min: 1, max: MAX_THREADS, maxDoc: 'max(256, 4 × cores)', default: '1', doc: 'Batch slots (threads) of the batcher.' },
  { path: 'batchers.*.batchSize', type: 'integer', min: 1, max: 1_000_000, default: '100', doc: 'Messages per batch.' },
  { path: 'batchers.*.batchTimeout', type: 'integer', min: 0, max: MAX_TIMER_MS, default: '1000', doc: 'How long a batch waits to fill, in ms.' },
  { path: 'batchers.*.maxDemand', type: 'integer', min: 1, max: 1_000_000, default: 'batchSize', doc: 'Messages in full batches the batcher takes, beyond two per slot, before holding the processors back; partial batches do not count.' },
  { path: 'context', type: 'any', doc: 'Handed to every callback; plain data with threads.' },
  { path: 'shutdownTimeout', type: 'integer', min: 0, max: MAX_TIMER_MS, default: '30000', doc: 'The drain budget of stop(), in ms.' },
  { path: 'logger', type: 'object', doc: 'A pino logger; default pino at warn on stderr.' },
] as const satisfies readonly OptionSpec[];

export type OptionPath = (typeof OPTION_SCHEMA)[number]['path'];

const BY_PATH = new Map<string, OptionSpec>(OPTION_SCHEMA.map((spec) => [spec.path, spec]));

/** The schema row of an option path (`batchers.orders.batchSize` finds `batchers.*.batchSize`). */
export function specOf(path: string): OptionSpec {
  const spec = BY_PATH.get(path) ?? BY_PATH.get(path.replace(/^batchers\.[^.]+\./, 'batchers.*.'));
  if (!spec) throw new Error(`no schema row for the option ${path}`);
  return spec;
}

/** The keys the schema knows one level under `prefix` ('' for the top level). */
export function keysUnder(prefix: string): string[] {
  const keys = new Set<string>();
  for (const spec of OPTION_SCHEMA) {
    if (prefix !== '' && !spec.path.startsWith(`${prefix}.`)) continue;
    const rest = prefix === '' ? spec.path : spec.path.slice(prefix.length + 1);
    keys.add(rest.split('.')[0]!);
  }
  return [...keys];
}

/** `an integer from 1 to 256`, as option errors say it. */
export function rangeText(spec: OptionSpec): string {
  const what = spec.type === 'integer' ? 'an integer' : 'a number';
  if (spec.minExclusive) return `${what} above ${spec.min} and up to ${spec.max}`;
  return `${what} from ${spec.min} to ${spec.max}`;
}
