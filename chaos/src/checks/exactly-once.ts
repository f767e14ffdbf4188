/**
 * Exactly-once on one SQLite file: two processes share a queue whose batches write to a sink table
 * in the same file and ack their queue rows in the same transaction (`ackInTransaction` of
 * `@throughway/sqlite-producer/handler`). They are SIGKILLed in turn at random moments, early
 * (during start-up and the first claims) and late (mid-run, between any commit and the main
 * thread's bookkeeping), and restarted at once; the dead one's leases run out after 3 s and the
 * other takes its rows over. At the end every row must be in the sink exactly once (lost 0,
 * duplicates 0), the queue empty and nothing dead-lettered.
 */
import Database from 'better-sqlite3';
import { countPending, deadLetters, enqueue, migrate } from '@throughway/sqlite-producer';
import { childScript, killTwoInTurn, startNode, tempPlace, type Check, type CheckContext, type CheckResult, type Child } from '../util.js';

const LEASE_MS = 3000;

export function exactlyOnce(): Check {
  return {
    name: 'exactly-once/sqlite',
    async run(context: CheckContext): Promise<CheckResult> {
      const rows = context.short ? 5000 : 50_000;
      const kills = context.short ? 4 : 16;
      const tmp = tempPlace('eo');
      const database = tmp.path('queue.db');
      const start = (untilDone: boolean): Child => startNode(childScript('exactly-once-worker'), [JSON.stringify({ database, leaseMs: LEASE_MS, untilDone })]);
      try {
        migrate(database);
        enqueue(database, Array.from({ length: rows }, (_, i) => String(i + 1)));
        const setup = new Database(database);
        setup.exec('CREATE TABLE sink (id INTEGER NOT NULL, pid INTEGER NOT NULL)'); // no key: a duplicate must show
        setup.close();
        // Even kills early (20-400 ms after the last restart), odd ones late (0.5-2.5 s).
        const run = await killTwoInTurn(start, {
          kills,
          victim: () => context.random.int(0, 1),
          pause: (k) => (k % 2 === 0 ? context.random.int(20, 400) : context.random.int(500, 2500)),
          workLeft: () => countPending(database) > 0,
        });
        if (run.failure) return { name: this.name, ok: false, counts: { kills: run.kills }, note: run.failure };
        const db = new Database(database, { readonly: true });
        const sink = db.prepare('SELECT id, count(*) FROM sink GROUP BY id').raw().all() as [number, number][];
        db.close();
        const seen = new Map(sink);
        let lost = 0;
        let duplicates = 0;
        for (let id = 1; id <= rows; id++) {
          const n = seen.get(id) ?? 0;
          if (n === 0) lost++;
          if (n > 1) duplicates++;
        }
        const stray = sink.filter(([id]) => id < 1 || id > rows).length;
        const wronglyDead = deadLetters(database).length;
        const pending = countPending(database);
        const ok = lost === 0 && duplicates === 0 && stray === 0 && wronglyDead === 0 && pending === 0 && run.kills > 0;
        const note = `${rows} rows, 2 processes, leaseMs ${LEASE_MS}, prefetch 200, batches of 100 in threads; ${pending} rows left in the queue${stray ? `, ${stray} unknown ids in the sink` : ''}`;
        return { name: this.name, ok, counts: { kills: run.kills, lost, wronglyDead, duplicates, peakRssMb: run.peakRssMb }, note };
      } finally {
        tmp.cleanup();
      }
    },
  };
}
