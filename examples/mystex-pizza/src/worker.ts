/**
 * One `--workers` child: the demo's pipeline on the shared queue, until the queue holds nothing
 * more (or SIGTERM), then its counters as one JSON line on stdout. Argument: JSON `WorkerArgs`.
 */
import { Pipeline } from '@throughway/core';
import { openDatabase } from '@throughway/sqlite-producer';
import { createLogger } from './log.js';
import { openQueuePool, pgDrained, pgSource } from './pg-queue.js';
import { queueDrained } from './queue.js';
import { pipelineOptions, queueSource, type DemoSource } from './run.js';
import type { WorkerArgs } from './workers.js';

const { options, target, queueFile, exactlyOnceQueue } = JSON.parse(process.argv[2]!) as WorkerArgs;
const logger = createLogger(options.logLevel, process.stderr, false);
const cpu = process.cpuUsage();
let source: DemoSource;
let drained: () => Promise<boolean>;
let close: () => Promise<void>;
if (target.kind === 'postgres' && queueFile === null) {
  const pool = await openQueuePool(target);
  source = pgSource(target, (error) => logger.warn({ err: error }, 'queue error; retrying'));
  drained = () => pgDrained(pool);
  close = () => pool.end();
} else {
  const db = openDatabase(queueFile!, 30_000);
  source = queueSource(queueFile!, logger);
  drained = async () => queueDrained(db);
  close = async () => void db.close();
}
const pipeline = await Pipeline.start(pipelineOptions(options, target, source, logger, exactlyOnceQueue));
let stopping = false;
process.on('SIGTERM', () => (stopping = true));
while (!stopping && !(await drained())) await new Promise((resolve) => setTimeout(resolve, 100));
await pipeline.stop();
await close();
const { user, system } = process.cpuUsage(cpu);
const s = source.stats();
process.stdout.write(`${JSON.stringify({ acked: s.acked, deadLettered: s.deadLettered, cpuMs: (user + system) / 1000 })}\n`);
