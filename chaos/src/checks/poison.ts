/**
 * 1% poison rows: messages whose handler kills its thread, half by process.exit, half by running
 * out of heap under `resourceLimits`. Only the poison rows may end in the dead-letter table (each
 * after maxAttempts thread deaths); every other row must be processed and acked. Needs the
 * engine to isolate the culprit of a thread death (issue 9, finding 2): without it, the innocent
 * messages of each dead call fail with it.
 */
import { Pipeline } from '@throughway/core';
import { pino } from 'pino';
import { countPending, deadLetters, enqueue, migrate, sqliteQueue } from '@throughway/sqlite-producer';
import { tempPlace, waitUntil, type Check, type CheckContext, type CheckResult } from '../util.js';

const handlers = new URL('../children/poison-handlers.js', import.meta.url);

export function poison(expectedFailure?: string): Check {
  return {
    name: 'poison-rows',
    expectedFailure,
    async run(context: CheckContext): Promise<CheckResult> {
      const rows = context.short ? 500 : 20_000;
      const tmp = tempPlace('poison');
      try {
        const database = tmp.path('queue.db');
        migrate(database);
        const poisoned = new Map<number, string>();
        for (const i of context.random.sample(rows, Math.max(2, Math.round(rows / 100)))) poisoned.set(i + 1, poisoned.size % 2 === 0 ? 'exit' : 'oom');
        enqueue(database, Array.from({ length: rows }, (_, i) => (poisoned.has(i + 1) ? `${poisoned.get(i + 1)}:${i + 1}` : `ok:${i + 1}`)));
        const source = sqliteQueue({ database, pollInterval: 20, maxAttempts: 2, backoff: { baseMs: 10, maxMs: 50 } });
        const pipeline = await Pipeline.start({
          name: `chaos-poison-${process.pid}`,
          handlers,
          producer: { module: source },
          processors: { default: { concurrency: 2, maxDemand: 20, resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 } } },
          shutdownTimeout: 10_000,
          // Thread deaths are expected here: keep the chaos output to one line per check.
          logger: pino({ level: 'silent' }),
        });
        const drained = await waitUntil(() => countPending(database) === 0, Math.max(30_000, context.secondsLeft() * 1000 - 30_000));
        await pipeline.stop();
        const dead = deadLetters(database);
        let wronglyDead = 0;
        let poisonDead = 0;
        for (const d of dead) {
          if (poisoned.has(d.id)) poisonDead++;
          else wronglyDead++;
        }
        const stats = source.stats();
        const lost = rows - stats.acked - dead.length;
        const ok = drained && wronglyDead === 0 && lost === 0 && poisonDead === poisoned.size;
        const note = `${rows} rows, ${poisoned.size} poison (exit and out-of-memory), ${poisonDead} of them dead-lettered` + (drained ? '' : `; the queue did not drain (${countPending(database)} left)`);
        return { name: this.name, ok, counts: { lost, wronglyDead }, note };
      } finally {
        tmp.cleanup();
      }
    },
  };
}
