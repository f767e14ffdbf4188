/**
 * Child of the fuzz check: tries each case of a group from `from` on, printing one JSON line
 * before (`start`) and one after each. A case that starts threads without end or crashes the
 * process leaves its `start` line as the last one: the parent counts it as started and goes on
 * in a new child. Argument: JSON { seed, group, from, dir }.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Pipeline } from '@throughway/core';
import { sqliteCursor, sqliteQueue } from '@throughway/sqlite-producer';
import { pino } from 'pino';
import { fuzzCases, withValue, type FuzzGroup } from '../checks/fuzz-cases.js';

const o = JSON.parse(process.argv[2]!) as { seed: number; group: FuzzGroup; from: number; dir: string };
const cases = fuzzCases(o.seed, o.group);
const handlers = new URL('./noop-handlers.js', import.meta.url);
const silent = pino({ level: 'silent' });

/** Resources that mean something started (threads, sockets, files), not the timers of this loop. */
function running(): number {
  return process.getActiveResourcesInfo().filter((r) => r !== 'Timeout' && r !== 'Immediate' && r !== 'TTYWrap' && r !== 'PipeWrap').length;
}

for (let i = o.from; i < cases.length; i++) {
  const c = cases[i]!;
  console.log(JSON.stringify({ i, start: true }));
  const database = join(o.dir, `case-${i}.db`);
  const before = running();
  let code: string | null = null;
  let message = '';
  let started = false;
  try {
    if (c.target === 'sqliteQueue') sqliteQueue(withValue({ database }, c.path, c.value) as never);
    else if (c.target === 'sqliteCursor') sqliteCursor(withValue({ database, table: 'users' }, c.path, c.value) as never);
    else {
      const base = {
        name: `chaos-fuzz-${i}`,
        handlers,
        producer: { module: { handleDemand: () => [] }, rateLimiting: { allowedMessages: 10, interval: 100 } },
        processors: { default: { concurrency: 1 } },
        batchers: { default: { batchSize: 10 } },
        logger: silent,
      };
      const pipeline = await Pipeline.start(withValue(base, c.path, c.value) as never);
      started = true;
      await pipeline.stop();
    }
    started = true;
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown };
    code = typeof e.code === 'string' ? e.code : null;
    message = String(e.message ?? error);
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  if (running() > before || existsSync(database)) started = true;
  console.log(JSON.stringify({ i, code, started, message: message.slice(0, 200) }));
}
