/**
 * Command-line options of `pnpm demo`. Hand-rolled (no dependency for a dozen flags); every option
 * accepts `--name value` and `--name=value`, and a mistake exits with status 2 and says why.
 */
import os from 'node:os';
import { DEFAULT_SQLITE_PATH } from './database.js';
import { UsageError } from './errors.js';

/**
 * Processor threads by default: one core fewer than the machine has. Decoding is ~2 µs an event,
 * so one processor thread keeps up with several hundred thousand events/s, while the main thread
 * (queue, routing, acks) and the insert batch worker each need a core's share too. On 2 cores,
 * 1 processor thread measured 87–132k events/s against 72–80k with 2, in alternating runs.
 */
export function defaultConcurrency(): number {
  return Math.max(1, os.availableParallelism() - 1);
}

export { UsageError } from './errors.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DemoOptions {
  events: number;
  /** SQLite path or postgres:// URL; undefined = the default SQLite file. */
  database?: string;
  /** The SQLite queue file; undefined = chosen from the database (see run.ts). */
  queue?: string;
  concurrency: number;
  batchSize: number;
  rateLimit?: { allowedMessages: number; interval: number };
  seed: number;
  keep: boolean;
  logLevel: LogLevel;
  /** Print the summary as one JSON object on stdout (for scripts and the benchmark). */
  json: boolean;
  /** Serve the live dashboard on this port (0: any free port) while the pipeline runs. */
  dashboard?: number;
  /** Where the events queue: the SQLite queue file, or a queue table in the Postgres database (exactly-once). */
  source: 'sqlite' | 'postgres';
  /** Processes running the pipeline on the one queue (this one and N - 1 children). */
  workers: number;
  help: boolean;
}

export const DEFAULT_DASHBOARD_PORT = 4010;

export const DEFAULTS = {
  events: 200_000,
  batchSize: 1000,
  seed: 42,
  logLevel: 'info' as LogLevel,
};

export function usage(): string {
  return `Mystex Pizza: the seed's fulfillment pipeline on Throughway.

Generates PizzaBarn events (Base64 JSON) into a SQLite queue, runs them through the pipeline
(decode and validate in worker threads, bulk upserts in a batch worker), then prints a summary
and checks the tables against the generator's own tally. Exits 1 if the check fails.

Usage: pnpm demo [options]        (or: node examples/mystex-pizza/dist/cli.js [options])

Options:
  --events N             events to generate (default ${DEFAULTS.events.toLocaleString('en-US')})
  --database PATH|URL    SQLite file (default ${DEFAULT_SQLITE_PATH}), or a Postgres URL such as
                         postgres://postgres@127.0.0.1:5432/test or postgres:///test?host=/var/run/postgresql
                         (add ?schema=NAME to pick the schema; default "mystex")
  --queue PATH           SQLite file of the event queue (default: <database>-queue.db, beside a
                         SQLite database, or in ${os.tmpdir()} for Postgres)
  --concurrency N        processor threads (default: cores - 1, at least 1: ${defaultConcurrency()} here)
  --batch-size N         rows per bulk insert (default ${DEFAULTS.batchSize})
  --rate-limit N/INTERVAL  at most N events per interval, e.g. 5000/1s, 200/100ms (default: none)
  --seed N               generator seed; the same seed gives the same events (default ${DEFAULTS.seed})
  --keep                 keep the database and queue after a finished run (they are deleted
                         otherwise; an interrupted run always keeps them so a rerun can resume;
                         a run that finds a finished run's files starts over)
  --log-level LEVEL      ${LOG_LEVELS.join(', ')} (default ${DEFAULTS.logLevel}); logs go to stderr
  --json                 print the summary as JSON on stdout instead of a table
  --dashboard [PORT]     serve a live dashboard on http://127.0.0.1:PORT while the pipeline runs
                         (default port ${DEFAULT_DASHBOARD_PORT}; 0 picks a free one; the page can change --rate-limit)
  --source sqlite|postgres  where the events queue (default sqlite): postgres puts the queue in the
                         --database's schema (a Postgres URL is then required), and each batch
                         commits its writes and the ack of its events in one transaction (exactly-once)
  --workers N            processes running the pipeline on the one queue (default 1)
  -h, --help             show this help

Interrupt with Ctrl-C (or SIGTERM): in-flight batches are written and acked, the summary shows how
far it got, and running the same command again resumes from the queue.`;
}

function positiveInt(name: string, value: string, min = 1): number {
  if (!/^\d[\d_]*$/.test(value)) throw new UsageError(`${name} expects a whole number, got "${value}"`);
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be at least ${min}, got ${value}`);
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/** `N/INTERVAL`, INTERVAL being a number of milliseconds or a number with ms, s or m. */
export function parseRateLimit(value: string): { allowedMessages: number; interval: number } {
  const m = /^(\d+)\/(\d*)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new UsageError(`--rate-limit expects N/INTERVAL such as 5000/1s or 200/100ms, got "${value}"`);
  const allowedMessages = positiveInt('--rate-limit', m[1]!);
  const amount = m[2] === '' ? 1 : Number(m[2]);
  const interval = amount * UNITS[m[3] ?? 'ms']!;
  if (!Number.isSafeInteger(interval) || interval < 1) throw new UsageError(`--rate-limit interval must be at least 1 ms, got "${value}"`);
  return { allowedMessages, interval };
}

export function parseArgs(argv: readonly string[]): DemoOptions {
  const o: DemoOptions = {
    events: DEFAULTS.events,
    concurrency: defaultConcurrency(),
    batchSize: DEFAULTS.batchSize,
    seed: DEFAULTS.seed,
    keep: false,
    logLevel: DEFAULTS.logLevel,
    json: false,
    help: false,
    source: 'sqlite',
    workers: 1,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') continue;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq >= 0) return arg.slice(eq + 1);
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${name} needs a value`);
      return next;
    };
    const flag = (): true => {
      if (eq >= 0) throw new UsageError(`${name} takes no value`);
      return true;
    };
    switch (name) {
      case '--events':
        o.events = positiveInt(name, value());
        break;
      case '--database':
        o.database = value();
        break;
      case '--queue':
        o.queue = value();
        break;
      case '--concurrency':
        o.concurrency = positiveInt(name, value());
        break;
      case '--batch-size':
        o.batchSize = positiveInt(name, value());
        break;
      case '--rate-limit':
        o.rateLimit = parseRateLimit(value());
        break;
      case '--seed':
        o.seed = positiveInt(name, value(), 0);
        if (o.seed > 0xffffffff) throw new UsageError(`--seed must fit in 32 bits, got ${o.seed}`);
        break;
      case '--keep':
        o.keep = flag();
        break;
      case '--log-level': {
        const level = value();
        if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
        o.logLevel = level as LogLevel;
        break;
      }
      case '--json':
        o.json = flag();
        break;
      case '--dashboard': {
        // The port is optional: taken from `=PORT` or from the next argument when it is a number.
        const next = argv[i + 1];
        const port = eq >= 0 ? value() : next !== undefined && /^\d+$/.test(next) ? argv[++i]! : String(DEFAULT_DASHBOARD_PORT);
        o.dashboard = positiveInt(name, port, 0);
        if (o.dashboard > 65535) throw new UsageError(`--dashboard port must be at most 65535, got ${port}`);
        break;
      }
      case '--source': {
        const source = value();
        if (source !== 'sqlite' && source !== 'postgres') throw new UsageError(`--source must be sqlite or postgres, got "${source}"`);
        o.source = source;
        break;
      }
      case '--workers':
        o.workers = positiveInt(name, value());
        if (o.workers > 64) throw new UsageError(`--workers must be at most 64, got ${o.workers}`);
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        throw new UsageError(`unknown option "${arg}" (see --help)`);
    }
  }
  if (o.source === 'postgres' && !(o.database && /^postgres(ql)?:\/\//i.test(o.database))) {
    throw new UsageError('--source postgres needs --database to be a Postgres URL (the queue lives in the same database as the tables)');
  }
  return o;
}
