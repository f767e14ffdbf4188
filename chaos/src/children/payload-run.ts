/**
 * Child of the 1 MB payload check: runs a pipeline over a queue of large rows with a large
 * `prefetch` (as an operator would set it for small events) until the queue is empty, then
 * prints its queue counters and peak RSS as one JSON line. Argument: JSON { database, prefetch,
 * maxDemand? } (maxDemand: messages per processor call; unset, the engine picks it from the
 * measured cost, which for a no-op handler is large: with 1 MB messages that is what dominates
 * the memory, not the queue).
 */
import { Pipeline } from '@throughway/core';
import { countPending, sqliteQueue } from '@throughway/sqlite-producer';

const o = JSON.parse(process.argv[2]!) as { database: string; prefetch: number; maxDemand?: number };
const source = sqliteQueue({ database: o.database, prefetch: o.prefetch, pollInterval: 20, metadata: false });
const pipeline = await Pipeline.start({
  name: `chaos-payloads-${process.pid}`,
  handlers: new URL('./noop-handlers.js', import.meta.url),
  producer: { module: source },
  processors: { default: { concurrency: 2, ...(o.maxDemand ? { maxDemand: o.maxDemand } : {}) } },
});
while (countPending(o.database) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
const { unacked } = await pipeline.stop();
console.log(JSON.stringify({ unacked, stats: source.stats(), maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
