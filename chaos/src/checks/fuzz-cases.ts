/**
 * The fuzzed options: for each numeric or object option, values outside any sane range (the
 * usual suspects, plus values drawn from the seed). Every one must be refused before anything
 * starts. Shared by the fuzz check and its child process, which rebuilds the list from the seed.
 */
import { Random } from '../util.js';

export type FuzzGroup = 'sqlite' | 'core';

export interface FuzzCase {
  /** sqliteQueue, sqliteCursor or Pipeline.start. */
  target: 'sqliteQueue' | 'sqliteCursor' | 'pipeline';
  path: string;
  value: unknown;
  /** How to print the value. */
  label: string;
}

type Kind = 'count' | 'timer' | 'limit' | 'object' | 'table';

const SQLITE_PATHS: [FuzzCase['target'], string, Kind][] = [
  ['sqliteQueue', 'leaseMs', 'timer'],
  ['sqliteQueue', 'pollInterval', 'timer'],
  ['sqliteQueue', 'busyTimeout', 'timer'],
  ['sqliteQueue', 'maxAttempts', 'count'],
  ['sqliteQueue', 'maxDeliveries', 'count'],
  ['sqliteQueue', 'prefetch', 'count'],
  ['sqliteQueue', 'prefetchBytes', 'limit'],
  ['sqliteQueue', 'backoff.baseMs', 'timer'],
  ['sqliteQueue', 'backoff.maxMs', 'timer'],
  ['sqliteQueue', 'backoff', 'object'],
  ['sqliteQueue', 'table', 'table'],
  ['sqliteCursor', 'pollInterval', 'timer'],
  ['sqliteCursor', 'busyTimeout', 'timer'],
];

const CORE_PATHS: [FuzzCase['target'], string, Kind][] = [
  ['pipeline', 'processors.default.concurrency', 'count'],
  ['pipeline', 'processors.default.maxDemand', 'count'],
  ['pipeline', 'producer.concurrency', 'count'],
  ['pipeline', 'producer.rateLimiting.allowedMessages', 'count'],
  ['pipeline', 'producer.rateLimiting.interval', 'timer'],
  ['pipeline', 'batchers.default.concurrency', 'count'],
  ['pipeline', 'batchers.default.batchSize', 'count'],
  ['pipeline', 'batchers.default.batchTimeout', 'timer'],
  ['pipeline', 'shutdownTimeout', 'timer'],
  ['pipeline', 'processors.default.resourceLimits.stackSizeMb', 'limit'],
  ['pipeline', 'processors.default.resourceLimits.maxOldGenerationSizeMb', 'limit'],
  ['pipeline', 'processors.default.resourceLimits.maxYoungGenerationSizeMb', 'limit'],
  ['pipeline', 'processors.default.resourceLimits', 'object'],
  ['pipeline', 'batchers', 'object'],
];

function values(kind: Kind, random: Random): [unknown, string][] {
  const common: [unknown, string][] = [
    [Number.NaN, 'NaN'],
    [Infinity, 'Infinity'],
    ['5', "'5'"],
    [new Date(0), 'a Date'],
  ];
  switch (kind) {
    case 'count': {
      const big = 1e9 + Math.floor(random.next() * 1e15);
      return [[1e12, '1e12'], [2 ** 53, '2^53'], [-1, '-1'], [0.5, '0.5'], [big, String(big)], [-big, String(-big)], ...common];
    }
    case 'timer': {
      const big = 2 ** 31 + Math.floor(random.next() * 2 ** 40);
      return [[2 ** 31, '2^31'], [2 ** 53, '2^53'], [-1, '-1'], [0.5, '0.5'], [big, String(big)], ...common];
    }
    case 'limit': {
      const big = 2 ** 33 + Math.floor(random.next() * 2 ** 50);
      return [[2 ** 53, '2^53'], [-1, '-1'], [0.5, '0.5'], [big, String(big)], ...common];
    }
    case 'object':
      return [[new Date(0), 'a Date'], [5, '5'], ['x', "'x'"], [[1], 'an array']];
    case 'table':
      return [['sqlite_master', "'sqlite_master'"], ['a b', "'a b'"], ['', "''"], ['t"; DROP TABLE x; --', 'an injection'], ['t\0x', 'a NUL'], [5, '5']];
  }
}

/** The cases of a group, in a fixed order for a seed. */
export function fuzzCases(seed: number, group: FuzzGroup): FuzzCase[] {
  const random = new Random(seed ^ (group === 'sqlite' ? 0x5117e : 0xc07e));
  const out: FuzzCase[] = [];
  for (const [target, path, kind] of group === 'sqlite' ? SQLITE_PATHS : CORE_PATHS) {
    for (const [value, label] of values(kind, random)) out.push({ target, path, value, label });
  }
  return out;
}

/** `object` with `value` set at the dotted `path` (creating objects on the way). */
export function withValue(object: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const keys = path.split('.');
  let at = object;
  for (const key of keys.slice(0, -1)) {
    const next = at[key];
    at = at[key] = next !== null && typeof next === 'object' && !(next instanceof Date) ? { ...(next as Record<string, unknown>) } : {};
  }
  at[keys.at(-1)!] = value;
  return object;
}
