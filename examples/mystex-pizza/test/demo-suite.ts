// The demo end to end, as a user runs it (the built CLI in a child process, real databases), for
// each database: a full run, malformed events in the dead-letter table, kill -9 and resume,
// SIGINT and resume. demo-sqlite.test.ts and demo-postgres.test.ts run it.
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeEvent, reasonOf } from '../src/decode.js';
import type { RunSummary } from '../src/summary.js';
import { runCli, sleep, startCli, type CliRun } from './helpers.js';

export interface Place {
  /** --database value */
  database: string;
  /** --queue value */
  queue: string;
}

export interface DemoFixture {
  name: string;
  /** A fresh database and queue for one test. */
  place(tag: string): Place;
  /** The tables' contents, timestamps left out, sorted in JS (not by the database's collation). */
  snapshot(place: Place): Promise<{ customers: string[]; orders: string[] }>;
  cleanup(): Promise<void>;
}

function summaryOf(run: CliRun): RunSummary {
  const line = run.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as RunSummary;
  } catch {
    throw new Error(`no JSON summary (exit ${run.code}, signal ${run.signal})\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

function queueRows(queue: string): number {
  const db = new Database(queue, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT count(*) FROM pizzabarn_events').pluck().get() as number;
  } finally {
    db.close();
  }
}

/** Rows still in the queue once the run has enqueued all of them, else null. */
function queueRowsOnceFilled(queue: string, events: number): number | null {
  const db = new Database(queue, { readonly: true, fileMustExist: true });
  try {
    const enqueued = db.prepare('SELECT enqueued FROM mystex_run').pluck().get() as number | undefined;
    if (enqueued !== events) return null;
    return db.prepare('SELECT count(*) FROM pizzabarn_events').pluck().get() as number;
  } finally {
    db.close();
  }
}

function deadLetters(queue: string): { id: number; payload: string; attempts: number; last_error: string }[] {
  const db = new Database(queue, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT id, payload, attempts, last_error FROM pizzabarn_events_dead ORDER BY id').all() as never;
  } finally {
    db.close();
  }
}

/** Waits until the child has finished `share` of the queue (rows gone), or fails if it exits first. */
async function waitForProgress(queue: string, events: number, share: number, child: { done: Promise<CliRun>; output: () => string }): Promise<void> {
  let exited = false;
  void child.done.then(() => (exited = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the demo finished before it could be interrupted:\n${child.output()}`);
    try {
      const left = queueRowsOnceFilled(queue, events);
      if (left !== null && left <= events * (1 - share)) return;
    } catch {
      // The queue file or its tables do not exist yet.
    }
    await sleep(25);
  }
  throw new Error(`no progress within 60 s:\n${child.output()}`);
}

/**
 * Tests that run the demo two or three times: on a loaded 2-core machine (CI beside other jobs) a
 * small demo run has taken 10-20 s, and these took 52-60 s against vitest's 60 s default.
 */
const DEMO_RUNS_TIMEOUT_MS = 180_000;

export function demoSuite(fixture: DemoFixture, events: { small: number; interrupted: number; rateLimit: string }): void {
  describe(`the demo on ${fixture.name}`, () => {
    afterAll(() => fixture.cleanup());
    const base = (place: Place, extra: string[] = []): string[] => ['--database', place.database, '--queue', place.queue, '--json', '--log-level', 'warn', ...extra];

    it('runs to a passing check, with every malformed event (and only those) dead-lettered at once with its reason', async () => {
      const place = fixture.place('full');
      const run = await runCli(base(place, ['--events', String(events.small), '--seed', '11', '--keep']));
      const summary = summaryOf(run);
      expect(run.code, run.stderr).toBe(0);
      expect(summary.check?.ok).toBe(true);
      expect(summary.processed).toBe(events.small);
      expect(summary.tables!.orders).toBe(summary.tally.expected.orders);
      expect(summary.tables!.placeholders).toBeGreaterThan(0);

      const dead = deadLetters(place.queue);
      const byReason: Record<string, number> = {};
      for (const row of dead) {
        const decoded = decodeEvent(row.payload);
        expect(decoded.kind, row.payload).toBe('malformed');
        if (decoded.kind === 'malformed') expect(reasonOf(row.last_error)).toBe(decoded.reason);
        expect(row.last_error).toMatch(/^[a-z0-9_]+: .+/);
        // retry: false: dead-lettered on the first delivery, never retried.
        expect(row.attempts).toBe(1);
        byReason[reasonOf(row.last_error)] = (byReason[reasonOf(row.last_error)] ?? 0) + 1;
      }
      expect(byReason).toEqual(summary.tally.rows.malformed);
      expect(queueRows(place.queue)).toBe(0);
    });

    it('resumes after kill -9 and ends with the tables of an uninterrupted run of the same seed', async () => {
      const n = String(events.interrupted);
      const whole = fixture.place('whole');
      const reference = await runCli(base(whole, ['--events', n, '--seed', '7', '--keep']));
      expect(reference.code, reference.stderr).toBe(0);

      const killed = fixture.place('killed');
      const child = startCli(base(killed, ['--events', n, '--seed', '7', '--keep', '--rate-limit', events.rateLimit]));
      await waitForProgress(killed.queue, events.interrupted, 0.3, child);
      child.child.kill('SIGKILL');
      const dead = await child.done;
      expect(dead.signal).toBe('SIGKILL');
      const left = queueRows(killed.queue);
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThan(events.interrupted);

      const resumed = await runCli(base(killed, ['--events', n, '--seed', '7', '--keep']));
      const summary = summaryOf(resumed);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(summary.resumed).toBe(true);
      expect(summary.check?.ok).toBe(true);
      expect(resumed.stderr).toMatch(/previous run \(pid \d+\) is gone/);
      expect(await fixture.snapshot(killed)).toEqual(await fixture.snapshot(whole));
      const letters = (place: Place) => deadLetters(place.queue).map((r) => [r.id, r.last_error]);
      expect(letters(killed)).toEqual(letters(whole));
    }, DEMO_RUNS_TIMEOUT_MS);

    it('drains on SIGINT, says how far it got, and a rerun finishes the rest', async () => {
      const n = String(events.interrupted);
      const place = fixture.place('sigint');
      const child = startCli(base(place, ['--events', n, '--seed', '9', '--rate-limit', events.rateLimit]));
      await waitForProgress(place.queue, events.interrupted, 0.2, child);
      child.child.kill('SIGINT');
      const stopped = await child.done;
      const summary = summaryOf(stopped);
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(summary.interruptedBy).toBe('SIGINT');
      expect(summary.check).toBeNull();
      // Drained: everything it took was acked, so the queue holds exactly what it did not process.
      expect(summary.queueState!.remaining).toBe(events.interrupted - summary.processed);
      expect(queueRows(place.queue)).toBe(events.interrupted - summary.processed);

      const rerun = await runCli(base(place, ['--events', n, '--seed', '9']));
      const done = summaryOf(rerun);
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(done.processed).toBe(events.interrupted - summary.processed);
      expect(done.check?.ok).toBe(true);
    }, DEMO_RUNS_TIMEOUT_MS);

    it('starts over on the files of a finished run (kept with --keep), even with another seed', async () => {
      const place = fixture.place('mixed');
      const first = await runCli(base(place, ['--events', '500', '--seed', '1', '--keep']));
      expect(first.code, first.stderr).toBe(0);
      const other = await runCli(base(place, ['--events', '700', '--seed', '2', '--keep', '--log-level', 'info']));
      const summary = summaryOf(other);
      expect(other.code, other.stderr).toBe(0);
      expect(other.stderr).toContain(`the queue ${place.queue} held a run that finished at`);
      expect(summary).toMatchObject({ resumed: false, processed: 700, seed: 2 });
      expect(summary.check?.ok).toBe(true);
      expect(summary.tables!.orders).toBe(summary.tally.expected.orders);
    });

    it('refuses tables that hold rows no queue knows of, saying what to delete', async () => {
      const place = fixture.place('orphan');
      const first = await runCli(base(place, ['--events', '500', '--seed', '3', '--keep']));
      expect(first.code, first.stderr).toBe(0);
      for (const suffix of ['', '-wal', '-shm']) rmSync(place.queue + suffix, { force: true });
      const again = await runCli(base(place, ['--events', '500', '--seed', '3']));
      expect(again.code).toBe(1);
      expect(again.stdout).toBe('');
      expect(again.stderr).toMatch(/already holds \d+ customers and \d+ orders, but the queue .* has no run that wrote them/);
      expect(again.stderr).toMatch(/Delete them first \((rm -f '|DROP TABLE ")/);
    });
  });
}
