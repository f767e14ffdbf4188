/**
 * The end of a worker started with `untilDone`: waits until the queue file has no pending row,
 * stops the pipeline and prints the source's counters.
 */
import type { Pipeline } from '@throughway/core';
import { countPending } from '@throughway/sqlite-producer';

export async function stopWhenDrained(pipeline: Pipeline, database: string, stats: () => unknown): Promise<void> {
  while (countPending(database) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  await pipeline.stop();
  console.log(`done ${JSON.stringify(stats())}`);
}
