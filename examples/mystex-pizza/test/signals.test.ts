// Signals outside the pipeline's run: the demo's handlers cover the final check too, so a SIGTERM
// there does not kill it before it prints its summary.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../src/summary.js';
import { sleep, startCli, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir('mystex-signals-');
afterAll(cleanup);

describe('the demo and signals after the pipeline', () => {
  it('a SIGTERM during the final check: the check runs to its end and the summary is printed (exit 0, not killed)', async () => {
    const database = path.join(dir, 'late.db');
    const queue = path.join(dir, 'late-queue.db');
    const run = startCli(['--database', database, '--queue', queue, '--events', '20000', '--seed', '5', '--json', '--log-level', 'info', '--keep']);
    const deadline = Date.now() + 120_000;
    while (!run.output().includes('checking the tables')) {
      if (Date.now() > deadline) throw new Error(`the demo never reached its final check:\n${run.output()}`);
      await sleep(5);
    }
    run.child.kill('SIGTERM');
    const done = await run.done;
    expect({ code: done.code, signal: done.signal }, done.stderr).toEqual({ code: 0, signal: null });
    const summary = JSON.parse(done.stdout.trim().split('\n').at(-1)!) as RunSummary;
    expect(summary.check?.ok).toBe(true);
    expect(summary.processed).toBe(20000);
    expect(summary.interruptedBy).toBeUndefined();
  });
});
