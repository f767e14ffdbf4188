/**
 * Two processes share one queue file and are killed in turn (SIGKILL at random moments, the
 * killed one restarted at once; its leases run out after `leaseMs` and the other process takes
 * its rows over). At the end every row must have been processed (lost 0), none dead-lettered, and
 * no row handled twice by one live process (a second delivery while the first was in flight).
 * Rows handled by two processes are the at-least-once cost of the kills, and are reported.
 */
import Database from 'better-sqlite3';
import { deadLetters, enqueue, migrate } from '@throughway/sqlite-producer';
import { childScript, killTwoInTurn, startNode, tempPlace, type Check, type CheckContext, type CheckResult, type Child } from '../util.js';

export function twoProcesses(): Check {
  return {
    name: 'two-processes',
    async run(context: CheckContext): Promise<CheckResult> {
      const rows = context.short ? 2000 : 20_000;
      const kills = context.short ? 4 : 12;
      const tmp = tempPlace('two');
      const database = tmp.path('queue.db');
      const side = tmp.path('side.db');
      const start = (untilDone = false): Child =>
        startNode(childScript('queue-worker'), [JSON.stringify({ database, side, leaseMs: 4000, delayMs: 1, untilDone })]);
      try {
        migrate(database);
        enqueue(database, Array.from({ length: rows }, (_, i) => String(i + 1)));
        const run = await killTwoInTurn(start, { kills, victim: (k) => k % 2, pause: () => context.random.int(300, 2000) });
        if (run.failure) return { name: this.name, ok: false, counts: { kills: run.kills }, note: run.failure };
        const peak = run.peakRssMb;
        const db = new Database(side, { readonly: true });
        const processed = db.prepare('SELECT id, pid FROM processed').raw().all() as [number, number][];
        db.close();
        const byId = new Map<number, number[]>();
        for (const [id, pid] of processed) byId.set(id, [...(byId.get(id) ?? []), pid]);
        let lost = 0;
        let duplicates = 0;
        let twiceInOneProcess = 0;
        for (let id = 1; id <= rows; id++) {
          const pids = byId.get(id) ?? [];
          if (pids.length === 0) lost++;
          if (pids.length > 1) duplicates++;
          if (new Set(pids).size < pids.length) twiceInOneProcess++;
        }
        const wronglyDead = deadLetters(database).length;
        const ok = lost === 0 && wronglyDead === 0 && twiceInOneProcess === 0;
        const note = `${rows} rows, leaseMs 4000, prefetch 200; ${duplicates} rows handled by two processes (in flight at a kill), ${twiceInOneProcess} twice by one process`;
        return { name: this.name, ok, counts: { kills: run.kills, lost, wronglyDead, duplicates, peakRssMb: peak }, note };
      } finally {
        tmp.cleanup();
      }
    },
  };
}
