// Real child processes: a SIGKILL mid-run, restarts, and two processes sharing one queue file.
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { countPending, deadLetters, enqueue, leasedRows, migrate, readCheckpoint, releaseLeases } from '@throughway/sqlite-producer';
import { open, processedCount, processedRows, runChild, tmpDb, waitFor, type Child } from './helpers.js';

const payloads = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ n: i + 1 }));

async function killWhen(child: Child, ready: () => boolean, what: string): Promise<void> {
  try {
    await waitFor(ready, what, 30_000);
  } catch (error) {
    child.process.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\nchild output:\n${child.output()}`);
  }
  child.process.kill('SIGKILL');
  const { signal } = await child.exited;
  expect(signal).toBe('SIGKILL');
}

async function finishes(child: Child): Promise<void> {
  const { code, signal } = await child.exited;
  expect({ code, signal }, child.output()).toEqual({ code: 0, signal: null });
}

describe('queue mode across processes', () => {
  test('four processes opening one new queue file at the same instant all start (30 files): the switch to WAL waits instead of failing', async () => {
    const dir = dirname(tmpDb('race'));
    const count = 30;
    const at = Date.now() + 2000; // every child is up by then
    const children = Array.from({ length: 4 }, () => runChild('open-race.mjs', { dir, count, at }));
    for (const child of children) {
      await finishes(child);
      const last = child.output().trim().split('\n').at(-1)!;
      expect(JSON.parse(last)).toEqual({ failures: [] });
    }
    for (let k = 0; k < count; k++) {
      const db = open(join(dir, `race-${k}.db`));
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'throughway_events'").get()).toEqual({ n: 1 });
      db.close();
    }
  });


  test.each([
    { runtime: 'inline', thread: false },
    { runtime: 'threads', thread: false },
    { runtime: 'inline', thread: true },
  ])('kill -9 mid-batch [$runtime, store thread: $thread]: leases expire, a second run processes the rest, every row at least once, the queue ends empty', async ({ runtime, thread }) => {
    const database = tmpDb('queue');
    const side = tmpDb('side');
    migrate(database);
    const N = 600;
    enqueue(database, payloads(N));
    const common = { mode: 'queue', database, side, leaseMs: 1500, concurrency: 4, runtime, maxDemand: 10, thread };

    const first = runChild('run-pipeline.mjs', { ...common, delayMs: 5 });
    await killWhen(first, () => processedCount(side) >= 100, '100 rows processed by the first run');
    const pid = first.process.pid!;
    // Every row the dead process still held, whether or not its lease has run out by now (now: 0).
    const leasedAtKill = leasedRows(database, { holderPrefix: `${hostname()}:${pid}:`, now: 0 }).map((r) => r.id);
    expect(leasedAtKill.length, 'rows were in flight when the process died').toBeGreaterThan(0);
    expect(countPending(database)).toBeGreaterThan(0);

    const second = runChild('run-pipeline.mjs', { ...common, delayMs: 0, untilDone: true });
    await finishes(second);

    expect(countPending(database)).toBe(0);
    expect(deadLetters(database)).toEqual([]);
    const rows = processedRows(side);
    const seen = new Map<number, number>();
    for (const r of rows) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
    for (let id = 1; id <= N; id++) expect(seen.get(id), `row ${id} processed`).toBeGreaterThanOrEqual(1);
    // Only rows the dead process held can have been processed twice.
    const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
    const held = new Set(leasedAtKill);
    expect(twice.filter((id) => !held.has(id))).toEqual([]);
    // The second run waited for the leases to expire: it handled the killed run's rows itself.
    const secondPid = second.process.pid!;
    const bySecond = new Set(rows.filter((r) => r.pid === secondPid).map((r) => r.id));
    for (const id of leasedAtKill) expect(bySecond.has(id), `leased row ${id} redelivered`).toBe(true);
  });

  test('killed more times than maxAttempts with rows in flight: a crash is not a failure, no row is dead-lettered, every row processed', async () => {
    const database = tmpDb('queue');
    const side = tmpDb('side');
    migrate(database);
    const N = 400;
    enqueue(database, payloads(N));
    // prefetch: each run holds ~200 rows it never gets to, so the same rows are in flight at every kill.
    const common = { mode: 'queue', database, side, concurrency: 2, maxDemand: 5, maxAttempts: 2, maxDeliveries: 50, prefetch: 200 };
    const KILLS = 4;
    for (let k = 0; k < KILLS; k++) {
      const before = processedCount(side);
      const child = runChild('run-pipeline.mjs', { ...common, delayMs: 20 });
      await killWhen(child, () => processedCount(side) >= before + 10, `run ${k + 1} processed 10 rows`);
      // What the demo does at restart: the dead process's leases end now, not in 30 s.
      releaseLeases(database, { holderPrefix: `${hostname()}:${child.process.pid}:` });
    }
    const db = open(database);
    const worst = db.prepare('SELECT max(deliveries) AS deliveries, max(attempts) AS attempts FROM throughway_events').get() as { deliveries: number; attempts: number };
    db.close();
    // Some row was in flight at every kill: counted as deliveries without an ack, not as failures.
    // (The last kill's leases end at the next claim.)
    expect(worst).toEqual({ deliveries: KILLS - 1, attempts: 0 });
    const last = runChild('run-pipeline.mjs', { ...common, delayMs: 0, untilDone: true });
    await finishes(last);
    expect(deadLetters(database)).toEqual([]);
    expect(countPending(database)).toBe(0);
    const seen = new Set(processedRows(side).map((r) => r.id));
    for (let id = 1; id <= N; id++) expect(seen.has(id), `row ${id} processed`).toBe(true);
  });

  test('two processes share one queue file (one with a store thread): no row is handed to both, every row processed exactly once', async () => {
    const database = tmpDb('queue');
    const side = tmpDb('side');
    migrate(database);
    const N = 2000;
    enqueue(database, payloads(N));
    // mark_done keeps each row with the leased_by of the producer that acked it.
    const common = { mode: 'queue', database, side, concurrency: 2, delayMs: 1, onSuccess: 'mark_done', untilDone: true };
    const a = runChild('run-pipeline.mjs', common);
    const b = runChild('run-pipeline.mjs', { ...common, thread: true });
    await Promise.all([finishes(a), finishes(b)]);

    const rows = processedRows(side);
    expect(rows).toHaveLength(N);
    expect(new Set(rows.map((r) => r.id)).size).toBe(N);
    // How the rows split between the two is up to their start-up times and SQLite's busy handler
    // (not fair): one may take them all. Only this pair processed rows, each row once.
    for (const r of rows) expect([a.process.pid, b.process.pid]).toContain(r.pid);
    // Each row names the process that acked it, and no delivery of it ended unacked.
    const db = open(database);
    const leasedBy = new Map((db.prepare('SELECT id, leased_by, attempts FROM throughway_events').all() as { id: number; leased_by: string; attempts: number }[]).map((r) => [r.id, r]));
    db.close();
    for (const r of rows) {
      const row = leasedBy.get(r.id)!;
      expect(row.leased_by.split(':')[1]).toBe(String(r.pid));
      expect(row.attempts).toBe(0);
    }
  });
});

describe('cursor mode across processes', () => {
  test('kill -9, then a restart resumes after the checkpoint: every row at least once, none before the checkpoint again', async () => {
    const database = tmpDb('users');
    const side = tmpDb('side');
    const db = open(database);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)');
    const insert = db.prepare('INSERT INTO users (id, email) VALUES (?, ?)');
    const N = 600;
    db.transaction(() => {
      for (let i = 1; i <= N; i++) insert.run(i, `u${i}@example.com`);
    })();
    db.close();
    const common = { mode: 'cursor', database, table: 'users', checkpointName: 'resume-test', side, concurrency: 4 };

    const first = runChild('run-pipeline.mjs', { ...common, delayMs: 5 });
    await killWhen(first, () => processedCount(side) >= 150, '150 rows processed by the first run');
    const checkpoint = readCheckpoint(database, 'resume-test') as number;
    expect(checkpoint).toBeGreaterThan(0);
    expect(checkpoint).toBeLessThan(N);
    const beforeRestart = new Set(processedRows(side).map((r) => r.id));
    for (let id = 1; id <= checkpoint; id++) expect(beforeRestart.has(id), `row ${id} at or below the checkpoint was processed`).toBe(true);

    const second = runChild('run-pipeline.mjs', { ...common, delayMs: 0, untilDone: true });
    await finishes(second);
    expect(readCheckpoint(database, 'resume-test')).toBe(N);
    const rows = processedRows(side);
    const bySecond = rows.filter((r) => r.pid === second.process.pid).map((r) => r.id);
    expect(Math.min(...bySecond)).toBe(checkpoint + 1);
    expect(new Set(bySecond).size).toBe(N - checkpoint);
    const all = new Set(rows.map((r) => r.id));
    for (let id = 1; id <= N; id++) expect(all.has(id)).toBe(true);
  });
});
