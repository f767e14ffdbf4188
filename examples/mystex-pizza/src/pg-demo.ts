/**
 * `--source postgres`: the demo with its queue in the same Postgres database (and schema) as its
 * tables, exactly-once on: each insert_all batch commits its rows and the ack of its events in one
 * transaction, so the consistency check must hold exactly, whatever kills happen (redelivered
 * events find their effects either fully there, with the event gone from the queue, or not at all).
 */
import { compare, readTables, type CheckResult, type TableState } from './check.js';
import type { DemoOptions } from './args.js';
import { describeTarget, parseDatabase } from './database.js';
import { int } from './format.js';
import { createLogger } from './log.js';
import { PG_QUEUE_TABLE, dropPgQueue, fillPgQueue, openQueuePool, pgDrained, pgQueueState, pgSource } from './pg-queue.js';
import { logStreamOver, report, runPipeline, type RunIO, type RunResult } from './run.js';
import { prepareTarget, removeTarget } from './schema.js';
import type { RunSummary } from './summary.js';

export async function runPostgresDemo(options: DemoOptions, io: RunIO): Promise<RunResult> {
  const target = parseDatabase(options.database);
  if (target.kind !== 'postgres') throw new Error('--source postgres needs a Postgres --database');
  const logs = logStreamOver(io.stderr);
  const logger = createLogger(options.logLevel, logs.stream, io.tty);
  const queue = `${describeTarget(target)} table ${PG_QUEUE_TABLE}`;
  logger.info(`Mystex Pizza on ${describeTarget(target)}, queue in the same database (exactly-once), ${options.workers} worker process${options.workers > 1 ? 'es' : ''}`);
  await prepareTarget(target);
  const pool = await openQueuePool(target);
  let summary: RunSummary;
  try {
    logger.info(`generating ${int(options.events)} PizzaBarn events (seed ${options.seed}) into the queue`);
    const filled = await fillPgQueue(pool, target, options.seed, options.events);
    const source = pgSource(target, (error) => logger.warn({ err: error }, 'queue error; retrying'));
    const run = await runPipeline(
      options,
      target,
      { source, queueFile: null, exactlyOnceQueue: PG_QUEUE_TABLE, drained: () => pgDrained(pool) },
      options.events,
      logs.attach,
      logger,
      io,
    );
    const state = await pgQueueState(pool);
    let tables: TableState | undefined;
    let check: CheckResult | null = null;
    if (state.remaining === 0) {
      tables = await readTables(target);
      check = compare(filled.tally, tables, state);
    } else if (!run.interruptedBy) {
      logger.error(`the pipeline stopped with ${int(state.remaining)} events left in the queue`);
    }
    summary = {
      database: describeTarget(target),
      queue,
      seed: options.seed,
      events: options.events,
      resumed: false,
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
  } catch (error) {
    await pool.end();
    throw error;
  }
  return report(
    summary,
    options,
    io,
    async () => {
      await dropPgQueue(pool, target);
      await removeTarget(target);
    },
    false,
  ).finally(() => pool.end().catch(() => undefined));
}
