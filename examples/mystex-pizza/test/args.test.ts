// Command-line parsing, the database spec and the summary/check rendering (no I/O).
import { describe, expect, it } from 'vitest';
import os from 'node:os';
import path from 'node:path';
import { UsageError, parseArgs, parseRateLimit, usage } from '../src/args.js';
import { compare, type QueueState, type TableState } from '../src/check.js';
import { DEFAULT_SQLITE_PATH, parseDatabase } from '../src/database.js';
import { tallyFor } from '../src/generator.js';
import { renderSummary } from '../src/summary.js';

describe('parseArgs', () => {
  it('has the documented defaults', () => {
    expect(parseArgs([])).toMatchObject({ events: 200_000, batchSize: 1000, seed: 42, keep: false, logLevel: 'info', json: false, help: false, concurrency: Math.max(1, os.availableParallelism() - 1) });
  });

  it('reads every option in both spellings', () => {
    const o = parseArgs(['--events', '3_000', '--database=/tmp/x.db', '--queue', 'q.db', '--concurrency=3', '--batch-size', '50', '--rate-limit', '500/1s', '--seed', '0', '--keep', '--log-level=warn', '--json']);
    expect(o).toMatchObject({ events: 3000, database: '/tmp/x.db', queue: 'q.db', concurrency: 3, batchSize: 50, rateLimit: { allowedMessages: 500, interval: 1000 }, seed: 0, keep: true, logLevel: 'warn', json: true });
    expect(parseArgs(['-h']).help).toBe(true);
  });

  it.each([
    [['--events', '0'], /at least 1/],
    [['--events', 'many'], /whole number/],
    [['--events'], /needs a value/],
    [['--batch-size', '--keep'], /needs a value/],
    [['--keep=yes'], /takes no value/],
    [['--log-level', 'loud'], /one of/],
    [['--frobnicate'], /unknown option/],
    [['--seed', '99999999999'], /32 bits/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(UsageError);
    expect(() => parseArgs(argv)).toThrow(message);
  });

  it('takes --dashboard with or without a port', () => {
    expect(parseArgs([]).dashboard).toBeUndefined();
    expect(parseArgs(['--dashboard']).dashboard).toBe(4010);
    expect(parseArgs(['--dashboard', '--keep'])).toMatchObject({ dashboard: 4010, keep: true });
    expect(parseArgs(['--dashboard', '8080', '--keep'])).toMatchObject({ dashboard: 8080, keep: true });
    expect(parseArgs(['--dashboard=0']).dashboard).toBe(0);
    expect(() => parseArgs(['--dashboard=70000'])).toThrow(/at most 65535/);
    expect(() => parseArgs(['--dashboard=x'])).toThrow(/whole number/);
  });

  it('parses rate limits with units', () => {
    expect(parseRateLimit('200/100ms')).toEqual({ allowedMessages: 200, interval: 100 });
    expect(parseRateLimit('200/250')).toEqual({ allowedMessages: 200, interval: 250 });
    expect(parseRateLimit('10/s')).toEqual({ allowedMessages: 10, interval: 1000 });
    expect(parseRateLimit('10/2m')).toEqual({ allowedMessages: 10, interval: 120_000 });
    expect(() => parseRateLimit('10')).toThrow(/N\/INTERVAL/);
    expect(() => parseRateLimit('0/1s')).toThrow(/at least 1/);
  });

  it('documents every option in --help', () => {
    const text = usage();
    for (const flag of ['--events', '--database', '--queue', '--concurrency', '--batch-size', '--rate-limit', '--seed', '--keep', '--log-level', '--json', '--dashboard', '--help']) {
      expect(text).toContain(flag);
    }
  });
});

describe('parseDatabase', () => {
  it('defaults to a SQLite file in the temp dir and resolves relative paths', () => {
    expect(parseDatabase(undefined)).toEqual({ kind: 'sqlite', path: DEFAULT_SQLITE_PATH });
    expect(parseDatabase('mystex.db')).toEqual({ kind: 'sqlite', path: path.resolve('mystex.db') });
  });

  it('takes Postgres URLs, with an optional schema', () => {
    expect(parseDatabase('postgres://postgres@127.0.0.1:5432/test')).toMatchObject({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test', schema: 'mystex' });
    const socket = parseDatabase('postgresql:///test?host=/var/run/postgresql&schema=demo_1');
    expect(socket).toMatchObject({ kind: 'postgres', url: 'postgresql:///test?host=/var/run/postgresql', schema: 'demo_1' });
    expect(parseDatabase('postgres://u:secret@h/db')).toMatchObject({ display: 'postgres://u:***@h/db?schema=mystex' });
    expect(() => parseDatabase('postgres://h/db?schema=Bad-Name')).toThrow(/schema/);
    expect(parseDatabase('postgres://postgres@/test?host=/var/run/postgresql')).toMatchObject({ url: 'postgres://postgres@/test?host=/var/run/postgresql', schema: 'mystex', display: 'postgres://postgres@/test?host=/var/run/postgresql&schema=mystex' });
  });
});

describe('compare and renderSummary', () => {
  const tally = tallyFor(5, 3000);
  const perfect: TableState = {
    customers: tally.expected.customers,
    realCustomers: tally.expected.realCustomers,
    placeholders: tally.expected.placeholders,
    incompleteCustomers: 0,
    orders: tally.expected.orders,
    distinctOrders: tally.expected.orders,
    ordersWithoutCustomer: 0,
    amountSum: tally.expected.amountSum,
    customerDigest: tally.expected.customerDigest,
    orderDigest: tally.expected.orderDigest,
  };
  const drained: QueueState = { remaining: 0, deadLetters: { ...(tally.rows.malformed as Record<string, number>) } };

  it('passes when everything matches', () => {
    const result = compare(tally, perfect, drained);
    expect(result.lines.filter((l) => !l.ok)).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it.each([
    ['a missing order', { orders: perfect.orders - 1, distinctOrders: perfect.orders - 1 }, {}, 'orders'],
    ['an orphan order', { ordersWithoutCustomer: 1 }, {}, 'orders whose customer is missing'],
    ['a different row', { customerDigest: perfect.customerDigest + 1 }, {}, 'customer rows match (digest)'],
    ['events left in the queue', {}, { remaining: 3 }, 'queue drained (events not yet acked)'],
    ['a valid event dead-lettered', {}, { deadLetters: { ...drained.deadLetters, other: 1 } }, 'dead letters for any other reason'],
  ])('fails on %s', (_what, tables, queue, failing) => {
    const result = compare(tally, { ...perfect, ...tables }, { ...drained, ...queue });
    expect(result.ok).toBe(false);
    expect(result.lines.filter((l) => !l.ok).map((l) => l.name)).toContain(failing);
  });

  it('renders a summary with the check, or says how to resume', () => {
    const base = { database: 'SQLite /tmp/x.db', queue: '/tmp/x-queue.db', seed: 5, events: 3000, resumed: false, processed: 3000, successful: 2900, failed: 100, wallMs: 1234, cpuMs: 2000, enqueueMs: 100, eventsPerSecond: 2431, tally, tables: perfect, queueState: drained };
    const text = renderSummary({ ...base, check: compare(tally, perfect, drained) });
    expect(text).toContain('Consistency check: PASSED');
    expect(text).toContain('placeholders waiting');
    expect(text).toContain('2,431 events/s');
    const stopped = renderSummary({ ...base, processed: 1000, interruptedBy: 'SIGINT', queueState: { remaining: 2000, deadLetters: {} }, check: null });
    expect(stopped).toContain('stopped by SIGINT');
    expect(stopped).toContain('still holds 2,000 events');
  });
});
