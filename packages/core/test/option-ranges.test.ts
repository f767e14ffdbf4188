// Every numeric core option has a documented range, enforced before anything starts; the option
// schema is the one source of ranges and defaults; misleading errors are fixed.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { DummyProducer, Pipeline, fromIterable } from '@throughway/core';
import { OPTION_SCHEMA, rangeText, type OptionSpec } from '../src/option-schema.js';
import { OPTIONS_FILE, SYNC_COMMAND, syncOptionDocs } from '../scripts/sync-option-docs.js';
import { SCRIPTED, uniqueName, useHarness } from './helpers.js';

const run = promisify(execFile);

function base(): any {
  return {
    name: uniqueName('ranges'),
    handlers: SCRIPTED,
    producer: { module: new DummyProducer() },
    processors: { default: { concurrency: 1, runtime: 'inline' } },
  };
}

/** Sets `path` (with `*` as the batcher `sink`) in an options object, creating what is missing. */
function setAt(options: any, path: string, value: unknown): void {
  const keys = path.replace('*', 'sink').split('.');
  let at = options;
  for (const key of keys.slice(0, -1)) at = at[key] ??= key === 'rateLimiting' ? { allowedMessages: 5, interval: 100 } : {};
  at[keys.at(-1)!] = value;
}

async function rejection(options: unknown): Promise<any> {
  try {
    const p = await Pipeline.start(options as any);
    await p.stop();
  } catch (error) {
    return error;
  }
  throw new Error('Pipeline.start accepted invalid options');
}

const numeric = (OPTION_SCHEMA as readonly OptionSpec[]).filter((s) => s.type === 'integer' || s.type === 'number');

describe('numeric option ranges', () => {
  test('every numeric option has a range in the schema', () => {
    expect(numeric.length).toBeGreaterThanOrEqual(14);
    for (const spec of numeric) {
      expect(Number.isFinite(spec.min), spec.path).toBe(true);
      expect(Number.isFinite(spec.max), spec.path).toBe(true);
    }
  });

  test.each(numeric.map((s) => [s.path, s] as const))('%s: below and above its range is rejected, naming the path and the range', async (path, spec) => {
    const below = spec.minExclusive ? spec.min! : spec.min! - 1;
    for (const value of [below, spec.max! + 1, spec.type === 'integer' ? spec.min! + 0.5 : Number.NaN]) {
      const options = base();
      setAt(options, path, value);
      const error = await rejection(options);
      expect(error.code, `${path} = ${value}`).toBe('ERR_THROUGHWAY_INVALID_OPTION');
      const where = path.replace('*', 'sink');
      expect(error.message).toContain(`\`${where}\``);
      expect(error.details.path).toBe(where);
      // minDemand is also held below maxDemand, which may be what it breaks first.
      if (!path.endsWith('minDemand')) expect(error.message).toContain(rangeText(spec));
    }
  });

  test('the upper bounds themselves are accepted (timers at 2^31-1 ms)', async () => {
    const options = base();
    options.shutdownTimeout = 2 ** 31 - 1;
    options.batchers = { sink: { batchTimeout: 2 ** 31 - 1, batchSize: 1_000_000 } };
    options.producer.rateLimiting = { allowedMessages: 1_000_000_000, interval: 2 ** 31 - 1 };
    // The handler module has handleBatch, so this starts; stopped at once.
    const p = await Pipeline.start(options);
    expect(p.getRateLimiting()).toEqual({ allowedMessages: 1_000_000_000, interval: 2 ** 31 - 1 });
    await p.stop();
  });

  test('batchers must be a plain object; resourceLimits keys are checked', async () => {
    for (const batchers of [[{ batchSize: 5 }], new Map([['sink', {}]])]) {
      const error = await rejection({ ...base(), batchers });
      expect(error.code).toBe('ERR_THROUGHWAY_INVALID_OPTION');
      expect(error.details.path).toBe('batchers');
    }
    const options = base();
    options.processors.default.resourceLimits = { maxOldGenMb: 64 };
    const error = await rejection(options);
    expect(error.message).toContain('Unknown option `processors.default.resourceLimits.maxOldGenMb`');
  });

  test('resourceLimits take whole megabytes from 1 up (a fraction of a MB is a thread that dies at start-up)', async () => {
    for (const key of ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb']) {
      for (const value of [0.5, 0, -1, 2 ** 53]) {
        const options = base();
        options.processors.default.resourceLimits = { [key]: value };
        const error = await rejection(options);
        expect(error.code).toBe('ERR_THROUGHWAY_INVALID_OPTION');
        expect(error.details.path).toBe(`processors.default.resourceLimits.${key}`);
      }
    }
  });
});

describe('the schema writes the documented ranges and defaults', () => {
  const source = readFileSync(OPTIONS_FILE, 'utf8');

  test(`options.ts reads as the schema says (else: run \`${SYNC_COMMAND}\`)`, () => {
    const synced = syncOptionDocs(source);
    if (synced !== source) expect.fail(`packages/core/src/options.ts: its Range/@default lines differ from OPTION_SCHEMA; run \`${SYNC_COMMAND}\``);
  });

  test('each option with a default or a range in the schema has them in its JSDoc, and no other option has a @default', () => {
    const documented = new Map<string, string>();
    const prefixes: Record<string, string> = { RateLimitingOptions: 'producer.rateLimiting.', ProcessorOptions: 'processors.default.', BatcherOptions: 'batchers.*.', PipelineOptions: '' };
    for (const [name, prefix] of Object.entries(prefixes)) {
      const body = source.slice(source.indexOf(`export interface ${name}`));
      const block = body.slice(0, body.indexOf('\n}\n'));
      for (const m of block.matchAll(/@default (.+)\n\s*\*\/\n\s*(\w+)\??:/g)) {
        const key = m[2]!;
        documented.set(name === 'PipelineOptions' && key === 'concurrency' ? 'producer.concurrency' : prefix + key, m[1]!.trim());
      }
    }
    const schema = new Map((OPTION_SCHEMA as readonly OptionSpec[]).filter((s) => s.default !== undefined).map((s) => [s.path, s.default!]));
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(schema));
    expect(source).toContain('   * Messages per batch.\n   * Range 1..1e6.\n   * @default 100\n   */\n  batchSize?: number;');
    expect(source).toContain('   * Range 1..max(256, 4 × cores).\n   * @default 1\n   */\n  concurrency?: number;');
    expect(source).toContain('   * Range 1..2^31-1.\n   */\n  interval: number;');
  });

  test('a changed default or range is written into the JSDoc, the prose kept; a second run changes nothing', () => {
    const schema = (OPTION_SCHEMA as readonly OptionSpec[]).map((s) => (s.path === 'batchers.*.batchSize' ? { ...s, default: '500', max: 10_000_000 } : s.path === 'shutdownTimeout' ? { ...s, default: undefined } : s));
    const synced = syncOptionDocs(source, schema);
    expect(synced).toContain('   * Messages per batch.\n   * Range 1..1e7.\n   * @default 500\n   */\n  batchSize?: number;');
    expect(synced).toContain('   * The drain budget of `stop()`, in ms.\n   * Range 0..2^31-1.\n   */\n  shutdownTimeout?: number;');
    expect(synced.split('\n').length).toBe(source.split('\n').length - 1);
    expect(syncOptionDocs(synced, schema)).toBe(synced);
    // Old-style lines (range inline, in a one-line comment) come out as the schema writes them.
    const old = source.replace('   * Messages per batch.\n   * Range 1..1e6.\n   * @default 100\n   */', '   * Messages per batch. Range 1..7.\n   */').replace(/\/\*\*\n\s*\* The interval, in ms.\n\s*\* Range 1..2\^31-1.\n\s*\*\//, '/** The interval, in ms. Range 1..2^31-1. */');
    expect(old).not.toBe(source);
    expect(syncOptionDocs(old)).toBe(source);
  });

  test('an option the schema has no row for stops the generator, naming it', () => {
    const stray = source.replace('  batchTimeout?: number;\n', '  batchTimeout?: number;\n  batchBytes?: number;\n');
    expect(() => syncOptionDocs(stray)).toThrow('the option `batchers.*.batchBytes` has no row in OPTION_SCHEMA');
  });

  test(`\`${SYNC_COMMAND} --check\` exits 0 on this tree`, async () => {
    const script = new URL('../scripts/sync-option-docs.ts', import.meta.url).pathname;
    const { stderr } = await run(process.execPath, ['--import', 'tsx', script, '--check']);
    expect(stderr).toBe('');
  });
});

describe('misleading errors, fixed', () => {
  const h = useHarness('inline');

  test('a producer given without { module } says to wrap it', async () => {
    const error = await rejection({ ...base(), producer: fromIterable([1, 2]) });
    expect(error.code).toBe('ERR_THROUGHWAY_INVALID_OPTION');
    expect(error.message).toContain('wrap the producer as `producer: { module: fromIterable(...) }`');
    expect(error.details.path).toBe('producer');
  });

  test('updateRateLimiting rejects unknown keys and out-of-range values', async () => {
    const p = await h.start({ ...base(), producer: { module: new DummyProducer(), rateLimiting: { allowedMessages: 5, interval: 1000 } } });
    expect(() => p.updateRateLimiting({ allowed: 10 } as any)).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_ARGUMENT', message: expect.stringContaining('Unknown key `allowed`') }));
    expect(() => p.updateRateLimiting({ interval: 2 ** 31 })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_ARGUMENT', message: expect.stringContaining('an integer from 1 to 2147483647') }));
    expect(p.getRateLimiting()).toEqual({ allowedMessages: 5, interval: 1000 });
  });

  test('a .ts handler module without tsx installed says to install tsx', async () => {
    const child = new URL('./fixtures/start-ts-handlers.mjs', import.meta.url);
    const { stdout } = await run(process.execPath, ['--import', new URL('./fixtures/no-tsx-register.mjs', import.meta.url).href, child.pathname], { timeout: 30_000 });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(result.code).toBe('ERR_THROUGHWAY_HANDLERS_LOAD');
    expect(result.message).toContain('enum-handlers.ts');
    expect(result.message).toContain('needs tsx');
    expect(result.message).toContain('npm install --save-dev tsx');
  });
});
