/**
 * 1 MB payloads with `prefetch: 2000`: the producer holds at most `prefetchBytes` (16 MiB by
 * default) of rows beyond the demand, so the process stays under RSS_BOUND_MB however many rows
 * the queue holds, and no row's lease runs out while it waits in the producer's buffer (a row
 * claimed twice by one live process is a duplicate).
 */
import { enqueue, migrate } from '@throughway/sqlite-producer';
import Database from 'better-sqlite3';
import { childScript, startNode, tempPlace, type Check, type CheckContext, type CheckResult } from '../util.js';

/**
 * The stated bound, with 2 processor threads of 20 messages a call: measured 0.49-0.51 GB for
 * prefetch 0 and prefetch 2000 alike (the prefetched rows stay within prefetchBytes), against
 * 2.7 GB for 3,000 rows before prefetch was bounded by bytes. Left to the engine, the demand of a
 * no-op handler grows to hundreds of messages a call, and 1 MB messages then take ~1 GB in the
 * pipeline itself (not bounded by bytes: the engine's side, see README).
 */
export const RSS_BOUND_MB = 768;
const MAX_DEMAND = 20;
const MB = 1024 * 1024;

export function payloads(): Check {
  return {
    name: 'payloads-1mb',
    async run(context: CheckContext): Promise<CheckResult> {
      const rows = context.short ? 150 : 3000;
      const tmp = tempPlace('payloads');
      try {
        const database = tmp.path('queue.db');
        migrate(database);
        // Enqueued in slices: the enqueueing process itself must not hold them all.
        for (let i = 0; i < rows; i += 50) {
          const n = Math.min(50, rows - i);
          enqueue(database, Array.from({ length: n }, (_, k) => Buffer.alloc(MB, (i + k) % 251)));
        }
        const child = startNode(childScript('payload-run'), [JSON.stringify({ database, prefetch: 2000, maxDemand: MAX_DEMAND })]);
        const exit = await child.exited;
        const peak = child.peakRssMb();
        let result: { unacked: number; stats: { claimed: number; acked: number; deadLettered: number }; maxRssMb: number } | undefined;
        try {
          result = JSON.parse(child.output().trim().split('\n').at(-1) ?? '');
        } catch {
          // reported below
        }
        if (exit.code !== 0 || !result) return { name: this.name, ok: false, counts: { peakRssMb: peak }, note: `the child failed (exit ${exit.code}):\n${child.output().slice(-2000)}` };
        const peakRssMb = Math.max(peak, result.maxRssMb);
        const db = new Database(database, { readonly: true });
        const left = db.prepare('SELECT count(*) FROM throughway_events').pluck().get() as number;
        db.close();
        const duplicates = result.stats.claimed - rows;
        const lost = rows - result.stats.acked - result.stats.deadLettered + left;
        const ok = duplicates === 0 && lost === 0 && result.stats.deadLettered === 0 && peakRssMb <= RSS_BOUND_MB;
        return {
          name: this.name,
          ok,
          counts: { lost, wronglyDead: result.stats.deadLettered, duplicates, peakRssMb },
          note: `${rows} rows of 1 MB, prefetch 2000, maxDemand ${MAX_DEMAND}, RSS bound ${RSS_BOUND_MB} MB`,
        };
      } finally {
        tmp.cleanup();
      }
    },
  };
}
