/**
 * Child of the exactly-once kill loop: a pipeline over a SQLite queue shared with another process,
 * whose batches write to a sink table in the same file and ack in the same transaction
 * (exactly-once-handlers.ts). Runs until killed, or with `untilDone` until the queue is empty.
 * Argument: JSON { database, leaseMs, untilDone }.
 */
import { Pipeline } from '@throughway/core';
import { sqliteQueue } from '@throughway/sqlite-producer';
import { pino } from 'pino';
import { stopWhenDrained } from './stop-when-drained.js';

const o = JSON.parse(process.argv[2]!) as { database: string; leaseMs: number; untilDone: boolean };
const source = sqliteQueue({ database: o.database, leaseMs: o.leaseMs, pollInterval: 20, prefetch: 200 });
const pipeline = await Pipeline.start({
  name: `chaos-eo-${process.pid}`,
  handlers: new URL('./exactly-once-handlers.js', import.meta.url),
  producer: { module: source },
  processors: { default: { runtime: 'threads', concurrency: 1, maxDemand: 100 } },
  batchers: { default: { batchSize: 100, batchTimeout: 10, concurrency: 2 } },
  context: { database: o.database },
  logger: pino({ level: 'warn' }),
});
console.log(`started ${process.pid}`);
if (o.untilDone) await stopWhenDrained(pipeline, o.database, () => source.stats());
