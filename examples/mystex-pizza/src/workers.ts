/**
 * `--workers N`: N - 1 more processes running the same pipeline on the same queue (the SQLite file
 * or the Postgres table), as several machines would. The queue is what they share; nothing else
 * passes between them. Each child runs until the queue holds nothing more, then prints its counters
 * as one JSON line; the parent adds them to its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { DemoOptions } from './args.js';
import type { DatabaseTarget } from './database.js';

export interface WorkerArgs {
  options: DemoOptions;
  target: DatabaseTarget;
  queueFile: string | null;
  exactlyOnceQueue?: string;
}

export interface WorkerTotals {
  acked: number;
  deadLettered: number;
  cpuMs: number;
}

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
/** The node flags of `pnpm demo` (the root package.json), for the children too. */
const NODE_FLAGS = ['--single-threaded-gc', '--min-semi-space-size=16', '--max-semi-space-size=64'];

/**
 * Starts `options.workers - 1` children. `finish(interrupted)` waits for them (after sending
 * SIGTERM when the run was interrupted, so they drain too) and sums their counters; a child that
 * failed is logged and counts nothing (its unacked rows stay in the queue for a rerun).
 */
export function startWorkers(options: DemoOptions, target: DatabaseTarget, run: { queueFile: string | null; exactlyOnceQueue?: string }, logger: Logger): { finish(interrupted: boolean): Promise<WorkerTotals> } {
  const children: { child: ChildProcess; out: string[]; exited: Promise<number | null> }[] = [];
  const args: WorkerArgs = { options: { ...options, workers: 1, logLevel: options.logLevel === 'info' ? 'warn' : options.logLevel }, target, queueFile: run.queueFile, ...(run.exactlyOnceQueue ? { exactlyOnceQueue: run.exactlyOnceQueue } : {}) };
  for (let i = 1; i < options.workers; i++) {
    const child = spawn(process.execPath, [...NODE_FLAGS, WORKER, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: string[] = [];
    child.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(d));
    children.push({ child, out, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) });
  }
  if (children.length > 0) logger.info(`started ${children.length} more worker process${children.length > 1 ? 'es' : ''} on the same queue (pids ${children.map((c) => c.child.pid).join(', ')})`);
  return {
    async finish(interrupted) {
      const totals: WorkerTotals = { acked: 0, deadLettered: 0, cpuMs: 0 };
      for (const c of children) {
        if (interrupted) c.child.kill('SIGTERM');
        const code = await c.exited;
        const last = c.out.join('').trim().split('\n').at(-1) ?? '';
        try {
          const t = JSON.parse(last) as WorkerTotals;
          totals.acked += t.acked;
          totals.deadLettered += t.deadLettered;
          totals.cpuMs += t.cpuMs;
        } catch {
          logger.error(`worker process ${c.child.pid} exited with ${code} without its counters`);
        }
      }
      return totals;
    },
  };
}
