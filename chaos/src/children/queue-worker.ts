/**
 * Child of the two-process check: a pipeline over a shared SQLite queue, recording what it
 * handles (record-handlers.ts). Runs until killed, or with `untilDone` until the queue is empty.
 * Argument: JSON { database, side, leaseMs, delayMs, untilDone }.
 */
import { Pipeline } from '@throughway/core';
import { sqliteQueue } from '@throughway/sqlite-producer';
import { pino } from 'pino';
import { stopWhenDrained } from './stop-when-drained.js';

const o = JSON.parse(process.argv[2]!) as { database: string; side: string; leaseMs: number; delayMs: number; untilDone: boolean };
const source = sqliteQueue({ database: o.database, leaseMs: o.leaseMs, pollInterval: 20, prefetch: 200, maxAttempts: 3, metadata: false });
const pipeline = await Pipeline.start({
  name: `chaos-worker-${process.pid}`,
  handlers: new URL('./record-handlers.js', import.meta.url),
  producer: { module: source },
  processors: { default: { concurrency: 2, maxDemand: 10 } },
  context: { side: o.side, delayMs: o.delayMs },
  logger: pino({ level: 'warn' }),
});
console.log(`started ${process.pid}`);
if (o.untilDone) await stopWhenDrained(pipeline, o.database, () => source.stats());
