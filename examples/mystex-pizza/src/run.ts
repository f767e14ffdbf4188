/**
 * One run of the demo, start to finish: prepare the tables, fill the queue (or find it filled),
 * run the pipeline until the queue is empty or a signal arrives, drain, check, report.
 *
 * The pipeline is the seed's: one producer (the SQLite queue), processors in worker threads that
 * decode and validate, and two batchers: `insert_all` (bulk writes, batch key = table) and
 * `default` (the ignored event types, acked with their batch and written nowhere).
 */
import path from 'node:path';
import os from 'node:os';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import { Pipeline, progress, type PipelineOptions, type Producer, type Progress } from '@throughway/core';
import { serveDashboard } from '@throughway/dashboard';
import { sqliteQueue, type SqliteQueueSource } from '@throughway/sqlite-producer';
import type { DemoOptions } from './args.js';
import { compare, readTables, type CheckResult, type TableState } from './check.js';
import { describeTarget, parseDatabase, type DatabaseTarget } from './database.js';
import { int } from './format.js';
import { createLogger } from './log.js';
import { BATCHER_IGNORED, BATCHER_INSERT, type PipelineContext } from './handlers.js';
import { QUEUE_TABLE, countRemaining, defaultQueuePath, fillQueue, openQueue, queueDrained, queueState, releaseLeasesOf } from './queue.js';
import { claimRun, readRunRecord, recordFinished, releaseRun } from './run-record.js';
import { refuseForeignRows, startOverIfFinished } from './leftovers.js';
import { prepareTarget, removeSqliteFile, removeTarget } from './schema.js';
import { renderSummary, type RunSummary } from './summary.js';
import { runPostgresDemo } from './pg-demo.js';
import { startWorkers } from './workers.js';

export interface RunIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Pretty log lines for a person (stderr is a terminal); the progress bar looks at stderr itself. */
  tty: boolean;
  /** Install SIGINT/SIGTERM handlers (off when embedded in another program). */
  signals: boolean;
}

export interface RunResult {
  summary: RunSummary;
  exitCode: number;
}

export const defaultIO = (): RunIO => ({ stdout: process.stdout, stderr: process.stderr, tty: Boolean(process.stderr.isTTY), signals: true });

/**
 * Queue settings. A killed run's leases are released at once by the next run (run-record.ts), so
 * the lease only matters when a process hangs: 30 s is far above a message's time in flight.
 * Failures that may be transient (a batch the database refused) retry quickly; malformed events
 * never retry (`retry: false` in the handler).
 */
export function queueSource(file: string, logger: Logger): SqliteQueueSource {
  return sqliteQueue({
    database: file,
    table: QUEUE_TABLE,
    // The handlers need only the payload: empty metadata keeps messages on the engine's fast path.
    metadata: false,
    leaseMs: 30_000,
    maxAttempts: 5,
    backoff: { baseMs: 250, maxMs: 5_000 },
    // Claims of ~2000 rows instead of one per demand increment (a few hundred): fewer
    // transactions on the main thread, measured ~10% less main-thread CPU per event.
    prefetch: 2000,
    onError: (error) => logger.warn({ err: error }, 'queue claim failed; retrying at the next poll'),
  });
}

/** What runPipeline needs of a queue source (the SQLite or the Postgres one). */
export interface DemoSource {
  (index: number): Producer<unknown>;
  stats(): { acked: number; deadLettered: number; retried: number };
}

const BATCH_TIMEOUT_MS = 20;

export function pipelineOptions(options: DemoOptions, target: DatabaseTarget, source: DemoSource, logger: Logger, exactlyOnceQueue?: string): PipelineOptions {
  const context: PipelineContext = { database: target, ...(exactlyOnceQueue ? { exactlyOnceQueue } : {}) };
  return {
    name: 'mystex-pizza',
    handlers: new URL('./handlers.js', import.meta.url),
    producer: { module: source, concurrency: 1, ...(options.rateLimit ? { rateLimiting: options.rateLimit } : {}) },
    // maxDemand is left to the engine, which sizes processor calls from the measured decode cost.
    processors: { default: { concurrency: options.concurrency } },
    batchers: {
      // One slot: SQLite has one writer per file. On Postgres a second slot (the engine puts
      // 'customers' and 'orders' on different slots, and writer.ts keeps parallel writes
      // deadlock-free) measured no faster on 2 cores: 99.2k/101.2k events/s against 99.7k/101.7k
      // with one (200k events, alternating, idle machine, 2026-12-07); the server's own CPU
      // (~1.4 s per run) shares the two cores with the pipeline's.
      // A full batch forms in ~10 ms at full speed; the timeout matters at the end of the queue
      // (and under --rate-limit), where it is pure latency: the run is over only when the last
      // partial batches are written. At 100 ms the last batch was written 100-119 ms after the
      // last processor call, at 20 ms 38-48 ms (200,000 events, 3 alternating pairs).
      [BATCHER_INSERT]: { concurrency: 1, batchSize: options.batchSize, batchTimeout: BATCH_TIMEOUT_MS },
      // Writes nothing: large batches, so the ignored events cost one hop per thousands.
      [BATCHER_IGNORED]: { concurrency: 1, batchSize: Math.max(options.batchSize, 2000), batchTimeout: BATCH_TIMEOUT_MS },
    },
    context,
    shutdownTimeout: 30_000,
    logger,
  };
}

/**
 * A warning for each failed batch, from the engine's telemetry (published on the main thread): the
 * engine does not log them, and without it a database refusing writes would only show as retries.
 */
function warnOnFailedBatches(logger: Logger): () => void {
  const onBatch = (message: unknown): void => {
    const m = message as { batcher: string; batchInfo: { batchKey: unknown }; failed: { status: { kind: string; reason?: unknown; error?: { message?: string } } }[] };
    if (m.failed.length > 0) {
      const status = m.failed[0]!.status;
      const why = status.kind === 'error' ? status.error?.message : JSON.stringify(status.reason);
      logger.warn({ batcher: m.batcher, batchKey: m.batchInfo.batchKey, failed: m.failed.length }, `a batch failed (${why}); its events go back to the queue and are retried`);
    }
  };
  subscribe('throughway:batch', onBatch);
  return () => unsubscribe('throughway:batch', onBatch);
}

/**
 * Log lines go to stderr, through the progress bar's `logStream` while there is one, so that a
 * log line never garbles the bar.
 */
export function logStreamOver(stderr: NodeJS.WritableStream): { stream: { write(chunk: string): boolean }; attach: (p: Progress | undefined) => void } {
  let bar: Progress | undefined;
  return {
    stream: { write: (chunk) => (bar ? bar.logStream.write(chunk) : stderr.write(chunk)) },
    attach: (p) => (bar = p),
  };
}

interface Signals {
  /** Resolves with the first signal's name. */
  signal: Promise<string>;
  /** The first signal's name, if one arrived. */
  received: () => string | undefined;
  /** Where the warnings go from now on. */
  useLogger: (logger: Logger) => void;
  dispose: () => void;
}

/**
 * The watch of the runDemo call in progress: installed for the whole run (enqueueing, the
 * pipeline, the final check and the summary), so that a signal outside the pipeline's run does
 * not kill the process before it has printed its summary.
 */
let runWatch: Signals | undefined;

/** Resolves with the signal's name on the first SIGINT/SIGTERM; a second one exits at once. */
function watchSignals(enabled: boolean, initial: Logger | undefined): Signals {
  if (!enabled) return { signal: new Promise(() => undefined), received: () => undefined, useLogger: () => undefined, dispose: () => undefined };
  let logger = initial;
  let received: string | undefined;
  let resolve!: (name: string) => void;
  const signal = new Promise<string>((r) => (resolve = r));
  const handler = (name: NodeJS.Signals): void => {
    if (received) {
      logger?.warn(`second ${name}: exiting without draining; unacked events stay in the queue`);
      process.exit(name === 'SIGINT' ? 130 : 143);
    }
    received = name;
    logger?.warn(`${name}: draining (in-flight batches are written and acked); press Ctrl-C again to quit at once`);
    resolve(name);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal,
    received: () => received,
    useLogger: (l) => (logger = l),
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * Runs the demo with `options` and returns its summary and exit code (0: check passed, 1: check
 * failed, 130/143: interrupted). Throws on setup errors (bad database URL, a queue of another run).
 *
 * @example
 * const { summary } = await runDemo(parseArgs(['--events', '5000', '--json']))
 */
export async function runDemo(options: DemoOptions, io: RunIO = defaultIO()): Promise<RunResult> {
  const watch = (runWatch = watchSignals(io.signals, undefined));
  try {
    return await (options.source === 'postgres' ? runPostgresDemo(options, io) : runSqliteDemo(options, io, watch));
  } finally {
    watch.dispose();
    runWatch = undefined;
  }
}

async function runSqliteDemo(options: DemoOptions, io: RunIO, watch: Signals): Promise<RunResult> {
  const target = parseDatabase(options.database);
  const queueFile = options.queue ? path.resolve(options.queue) : defaultQueuePath(target);
  const logs = logStreamOver(io.stderr);
  const logger = createLogger(options.logLevel, logs.stream, io.tty);
  logger.info(`Mystex Pizza on ${describeTarget(target)}, queue ${queueFile}`);
  watch.useLogger(logger);

  await startOverIfFinished(queueFile, target, logger);
  await prepareTarget(target);
  const queueDb = openQueue(queueFile);
  let summary: RunSummary;
  try {
    if (readRunRecord(queueDb) === null) await refuseForeignRows(target, queueFile);
    logger.info(`generating ${int(options.events)} PizzaBarn events (seed ${options.seed}) into the queue`);
    const filled = fillQueue(queueDb, options.seed, options.events, (n) => logger.debug(`enqueued ${int(n)} events`));
    if (filled.resumed) logger.info('the queue already holds this run: resuming from it');
    const deadHolder = claimRun(queueDb, process.pid);
    if (deadHolder !== null) {
      const released = releaseLeasesOf(queueDb, deadHolder);
      logger.warn(`previous run (pid ${deadHolder}) is gone; released the ${int(released)} events it had leased`);
    }
    const remainingAtStart = countRemaining(queueDb);
    const drained = options.workers > 1 ? () => queueDrained(queueDb) : undefined;
    const run = await runPipeline(options, target, { source: queueSource(queueFile, logger), queueFile, drained }, remainingAtStart, logs.attach, logger, io);
    const state = queueState(queueDb);
    let tables: TableState | undefined;
    let check: CheckResult | null = null;
    if (state.remaining === 0) {
      logger.info("checking the tables against the generator's tally");
      tables = await readTables(target);
      check = compare(filled.tally, tables, state);
      recordFinished(queueDb);
      const late = watch.received();
      // Nothing was left to drain: the check is finished and reported as usual.
      if (late && !run.interruptedBy) logger.warn(`${late} arrived after the pipeline had finished; the final check ran to its end`);
    } else if (!run.interruptedBy) {
      logger.error(`the pipeline stopped with ${int(state.remaining)} events left in the queue`);
    }
    summary = {
      database: describeTarget(target),
      queue: queueFile,
      seed: options.seed,
      events: options.events,
      resumed: filled.resumed,
      processed: run.acked + run.deadLettered,
      successful: run.acked,
      failed: run.deadLettered,
      wallMs: run.wallMs,
      cpuMs: run.cpuMs,
      enqueueMs: filled.enqueueMs,
      eventsPerSecond: run.wallMs > 0 ? ((run.acked + run.deadLettered) * 1000) / run.wallMs : 0,
      ...(run.interruptedBy ? { interruptedBy: run.interruptedBy } : {}),
      tally: filled.tally,
      tables,
      queueState: state,
      check,
    };
    releaseRun(queueDb, process.pid);
  } finally {
    queueDb.close();
  }

  return report(summary, options, io, async () => {
    await removeTarget(target);
    removeSqliteFile(queueFile);
  });
}

/**
 * Prints the summary, removes what the run wrote when its check passed (unless `--keep`), and
 * picks the exit code.
 */
export async function report(summary: RunSummary, options: DemoOptions, io: RunIO, remove: () => Promise<void>, resumable = true): Promise<RunResult> {
  io.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : `\n${renderSummary(summary)}\n`);
  const finished = summary.check !== null;
  if (finished && summary.check!.ok && !options.keep) {
    await remove();
  } else if (!options.json) {
    io.stdout.write(`\nKept ${summary.database} and the queue ${summary.queue}${finished || !resumable ? '' : ' (run the same command to resume)'}.\n`);
  }
  const exitCode = summary.interruptedBy ? (summary.interruptedBy === 'SIGTERM' ? 143 : 130) : finished && summary.check!.ok ? 0 : 1;
  return { summary, exitCode };
}

export interface PipelineRun {
  wallMs: number;
  cpuMs: number;
  acked: number;
  deadLettered: number;
  interruptedBy?: string;
}

/** The queue a run takes its events from. */
export interface RunSource {
  source: DemoSource;
  /** The SQLite queue file, for --workers children; null for the Postgres queue. */
  queueFile: string | null;
  /** Set when other processes share the queue: true once it holds nothing more. */
  drained?: () => boolean | Promise<boolean>;
  /** The Postgres queue table, when batches ack in their own transaction. */
  exactlyOnceQueue?: string;
}

/**
 * Runs the pipeline (and `--workers N` - 1 more processes on the same queue) until the queue holds
 * nothing more or a signal arrives, then drains it.
 */
export async function runPipeline(
  options: DemoOptions,
  target: DatabaseTarget,
  run: RunSource,
  remainingAtStart: number,
  attachProgress: (p: Progress | undefined) => void,
  logger: Logger,
  io: RunIO,
): Promise<PipelineRun> {
  if (remainingAtStart === 0) {
    logger.info('the queue is empty: nothing to process');
    return { wallMs: 0, cpuMs: 0, acked: 0, deadLettered: 0 };
  }
  const source = run.source;
  const workers = startWorkers(options, target, run, logger);
  const stopWarning = warnOnFailedBatches(logger);
  // The watch of the whole run when runDemo made one (it outlives the pipeline), else our own.
  const signals = runWatch ?? watchSignals(io.signals, logger);
  const ownWatch = signals !== runWatch;
  signals.useLogger(logger);
  const started = performance.now();
  const cpu = process.cpuUsage();
  let pipeline: Pipeline | undefined;
  let bar: Progress | undefined;
  try {
    pipeline = await Pipeline.start(pipelineOptions(options, target, source, logger, run.exactlyOnceQueue));
    const p = pipeline;
    logger.debug({ topology: p.topology() }, 'topology');
    logger.info(`pipeline started: ${options.concurrency} processor threads on ${os.availableParallelism()} cores, ${int(remainingAtStart)} events to process`);
    const finished = (): number => {
      const s = source.stats();
      return s.acked + s.deadLettered;
    };
    // The engine's progress bar (summary off: the demo prints its own, with the check).
    bar = progress(p, { total: remainingAtStart, stream: io.stderr, summary: false });
    attachProgress(bar);
    if (options.dashboard !== undefined) {
      // Closes by itself when the pipeline stops. Loopback only; the page may change the rate limit.
      const dashboard = await serveDashboard(p, { port: options.dashboard, allowControl: true });
      logger.info(`dashboard at ${dashboard.url}`);
    }
    // The queue's own counters say when every row is gone: acked, or dead-lettered.
    // With other processes on the queue, only the queue itself knows.
    let poll: NodeJS.Timeout | undefined;
    const drained = new Promise<undefined>((resolve) => {
      let checking = false;
      poll = setInterval(() => {
        if (!run.drained) {
          if (finished() >= remainingAtStart) resolve(undefined);
          return;
        }
        if (checking) return;
        checking = true;
        void Promise.resolve(run.drained()).then((done) => {
          checking = false;
          if (done) resolve(undefined);
        }, () => (checking = false));
      }, run.drained ? 100 : 5);
    });
    const interruptedBy = await Promise.race([drained, signals.signal]);
    clearInterval(poll);
    const { unacked } = await p.stop();
    const others = await workers.finish(Boolean(interruptedBy));
    const wallMs = performance.now() - started;
    const { user, system } = process.cpuUsage(cpu);
    bar.stop();
    attachProgress(undefined);
    if (unacked > 0) logger.warn(`${int(unacked)} events were left unacked; they stay in the queue and a rerun delivers them again`);
    const s = source.stats();
    if (s.retried > 0) logger.warn(`${int(s.retried)} deliveries failed and were retried (see the log above)`);
    return {
      wallMs,
      cpuMs: (user + system) / 1000 + others.cpuMs,
      acked: s.acked + others.acked,
      deadLettered: s.deadLettered + others.deadLettered,
      ...(interruptedBy ? { interruptedBy } : {}),
    };
  } catch (error) {
    bar?.stop();
    attachProgress(undefined);
    await pipeline?.stop().catch(() => undefined);
    await workers.finish(true).catch(() => undefined);
    throw error;
  } finally {
    stopWarning();
    if (ownWatch) signals.dispose();
  }
}
