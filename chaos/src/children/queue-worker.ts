/**
 * Child of the two-process check: a pipeline over a shared SQLite queue, recording what it
 * handles (record-handlers.ts). Runs until killed, or with `untilDone` until the queue is empty.
 * Argument: JSON { database, side, leaseMs, delayMs, untilDone }.
 */
import { Pipeline } from '@throughway/core';
import { countPending, sqliteQueue } from '@throughway/sqlite-producer';
import { pino } from 'pino';

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
if (o.untilDone) {
  while (countPending(o.database) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  await pipeline.stop();
  console.log(`done ${JSON.stringify(source.stats())}`);
}
