// Exactly-once when the queue and the sink are one SQLite file: the sink's write and the ack of the
// queue rows commit in one transaction, on the batch worker's own connection.
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { SqliteQueueProducer, countPending, deadLetters, enqueue, migrate, queueCounts, releaseLeases, sqliteQueue } from '@throughway/sqlite-producer';
import { ackInTransaction, LEASE_LOST } from '@throughway/sqlite-producer/handler';
import { controller, open, runChild, sleep, tmpDb, waitFor, type Child } from './helpers.js';

const handlers = new URL('./fixtures/exactly-once-handlers.mjs', import.meta.url);

function queueWith(n: number, onSuccess: 'delete' | 'mark_done' = 'delete'): string {
  const database = tmpDb('eo');
  migrate(database, { markDone: onSuccess === 'mark_done' });
  enqueue(database, Array.from({ length: n }, (_, i) => `ok:${i + 1}`));
  const db = open(database);
  db.exec('CREATE TABLE sink (id INTEGER NOT NULL, payload TEXT NOT NULL, pid INTEGER NOT NULL)');
  db.close();
  return database;
}

/** The sink's rows: count, distinct ids, lowest and highest id. */
function sinkSummary(database: string): { n: number; d: number; lo: number | null; hi: number | null } {
  const db = open(database);
  try {
    return db.prepare('SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM sink').get() as { n: number; d: number; lo: number | null; hi: number | null };
  } finally {
    db.close();
  }
}

function sinkRows(database: string): { id: number; pid: number }[] {
  const db = open(database);
  try {
    return db.prepare('SELECT id, pid FROM sink ORDER BY id').all() as { id: number; pid: number }[];
  } finally {
    db.close();
  }
}

async function finishes(child: Child): Promise<void> {
  const { code, signal } = await child.exited;
  expect({ code, signal }, child.output()).toEqual({ code: 0, signal: null });
}

// The inline runtime runs the handler's transaction on the main thread, where a producer without a
// store thread claims: it needs `thread: true` (README).
describe.each([
  { onSuccess: 'delete', runtime: 'threads', thread: false },
  { onSuccess: 'mark_done', runtime: 'threads', thread: false },
  { onSuccess: 'delete', runtime: 'inline', thread: true },
] as const)('ackInTransaction in a pipeline [$onSuccess, $runtime, store thread: $thread]', ({ onSuccess, runtime, thread }) => {
  test('each row lands in the sink exactly once and leaves the queue in the same transaction; the main thread writes nothing more', async () => {
    const database = queueWith(3000, onSuccess);
    const source = sqliteQueue({ database, onSuccess, thread, pollInterval: 10, leaseMs: 120_000 });
    const pipeline = await Pipeline.start({
      name: `sqlite-eo-${onSuccess}-${runtime}`,
      handlers,
      producer: { module: source },
      processors: { default: { runtime, concurrency: 1 } },
      batchers: { default: { batchSize: 200, batchTimeout: 20, concurrency: 2 } },
      context: { database, onSuccess },
    });
    await waitFor(() => source.stats().acked === 3000, 'all rows acked', 55_000);
    const { unacked } = await pipeline.stop();
    expect(unacked).toBe(0);
    expect(source.stats()).toEqual({ claimed: 3000, acked: 3000, committed: 3000, retried: 0, deadLettered: 0, errors: 0 });
    expect(sinkSummary(database)).toEqual({ n: 3000, d: 3000, lo: 1, hi: 3000 });
    expect(queueCounts(database)).toEqual({ ready: 0, leased: 0, delayed: 0, done: onSuccess === 'mark_done' ? 3000 : 0, dead: 0 });
    // The main thread counted the leases off: none is left behind.
    const db = open(database);
    expect(db.prepare('SELECT count(*) FROM throughway_events_leases').pluck().get()).toBe(0);
    if (onSuccess === 'mark_done') {
      // Marked by the transaction, which says so in leased_by.
      expect(db.prepare(`SELECT DISTINCT leased_by FROM throughway_events`).pluck().all()).toEqual([`${hostname()}:${process.pid}:transaction`]);
    }
    db.close();
  });
});

describe('ackInTransaction by hand', () => {
  test('a row whose lease ran out and was claimed again is neither written nor acked here; its message fails with LEASE_LOST and the next delivery writes it', async () => {
    const database = queueWith(2);
    const a = controller();
    const b = controller();
    const pa = new SqliteQueueProducer({ database, leaseMs: 50, pollInterval: 10 }, 0);
    const pb = new SqliteQueueProducer({ database, pollInterval: 10 }, 1);
    pa.init(a as never);
    pb.init(b as never);
    const sink = new Database(database, { timeout: 5000 });
    try {
      const held = pa.handleDemand(2);
      expect(held.map((m) => m.metadata)).toEqual([
        { id: 1, attempts: 1, deliveries: 0 },
        { id: 2, attempts: 1, deliveries: 0 },
      ]);
      await sleep(80);
      // B's claim ends A's expired lease (both rows count a delivery without an ack) and takes row 1.
      const taken = pb.handleDemand(1);
      expect(taken.map((m) => m.metadata)).toEqual([{ id: 1, attempts: 1, deliveries: 1 }]);
      const written: string[] = [];
      const write = (repo: import('@throughway/workers').Repo, owned: typeof held) => {
        written.push(...owned.map((m) => String(m.data)));
        return repo.insertAll('sink', owned.map((m) => ({ id: m.metadata!.id as number, payload: String(m.data), pid: 0 })));
      };
      const outA = await ackInTransaction(sink, held, write);
      expect(outA.map((m) => m.status)).toEqual([
        { kind: 'failed', reason: LEASE_LOST },
        { kind: 'failed', reason: LEASE_LOST },
      ]);
      expect(written).toEqual([]);
      expect(sinkSummary(database).n).toBe(0);
      expect(countPending(database)).toBe(2);
      // A's failures change nothing in the queue: the rows belong to their next deliveries.
      await Promise.all(outA.map((m) => m.acknowledger!.module.ack(m.acknowledger!.ref, [], [m])));
      expect(deadLetters(database)).toEqual([]);
      const outB = await ackInTransaction(sink, taken, write);
      expect(outB.map((m) => m.status)).toEqual([{ kind: 'ok' }]);
      expect(written).toEqual(['ok:1']);
      expect(sinkRows(database)).toEqual([{ id: 1, pid: 0 }]);
      expect(queueCounts(database)).toMatchObject({ ready: 1, leased: 0 });
      // The same delivery acked twice: the second finds no row of it.
      const again = await ackInTransaction(sink, taken, write);
      expect(again.map((m) => m.status)).toEqual([{ kind: 'failed', reason: LEASE_LOST }]);
      expect(sinkRows(database)).toEqual([{ id: 1, pid: 0 }]);
    } finally {
      sink.close();
      pa.terminate();
      pb.terminate();
    }
  });

  test('a throw in the write rolls back the ack too: the row stays leased and nothing is in the sink', async () => {
    const database = queueWith(1);
    const p = new SqliteQueueProducer({ database, pollInterval: 10 }, 0);
    p.init(controller() as never);
    const sink = new Database(database, { timeout: 5000 });
    try {
      const messages = p.handleDemand(1);
      await expect(
        ackInTransaction(sink, messages, async (repo) => {
          await repo.insertAll('sink', [{ id: 1, payload: 'ok:1', pid: 0 }]);
          throw new Error('after the write');
        }),
      ).rejects.toThrow('after the write');
      expect(sink.inTransaction).toBe(false);
      expect(queueCounts(database)).toMatchObject({ leased: 1, ready: 0 });
      expect(sinkSummary(database).n).toBe(0);
    } finally {
      sink.close();
      p.terminate();
    }
  });

  test('invalid arguments are refused with a coded error before anything is written', async () => {
    const database = queueWith(1);
    const sink = new Database(database, { timeout: 5000 });
    try {
      await expect(ackInTransaction(sink, [{ data: 'x', metadata: { id: 1 } } as never], () => undefined)).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_ARGUMENT' });
      await expect(ackInTransaction({} as never, [], () => undefined)).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', details: { path: 'ackInTransaction.db' } });
      await expect(ackInTransaction(sink, [], () => undefined, { onSuccess: 'drop' as never })).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', details: { path: 'ackInTransaction.options.onSuccess' } });
      await expect(ackInTransaction(sink, [], () => undefined, { table: 'x; DROP TABLE sink' })).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION' });
      expect(countPending(database)).toBe(1);
    } finally {
      sink.close();
    }
  });
});

describe('exactly-once across processes', () => {
  test('kill -9 right after a commit, before the main thread hears of it: the committed rows are never delivered again; a second run finishes the rest', async () => {
    const N = 2000;
    const database = queueWith(N);
    const common = { mode: 'queue', database, runtime: 'threads', concurrency: 1, maxDemand: 50, exactlyOnce: true, leaseMs: 60_000 };
    const first = runChild('run-pipeline.mjs', { ...common, killAfterCommits: 3 });
    const { signal } = await first.exited;
    expect(signal, first.output()).toBe('SIGKILL');
    const committed = sinkRows(database);
    expect(committed.length, 'the first run committed some batches').toBeGreaterThan(0);
    const db = open(database);
    // Its bookkeeping never happened: its leases are still there, and no committed row is in the queue.
    const prefix = `${hostname()}:${first.process.pid}:`;
    expect(db.prepare('SELECT count(*) FROM throughway_events_leases WHERE substr(leased_by, 1, length(?)) = ?').pluck().get(prefix, prefix)).toBeGreaterThan(0);
    const inQueue = db.prepare(`SELECT count(*) FROM throughway_events WHERE id IN (SELECT id FROM sink)`).pluck().get();
    db.close();
    expect(inQueue).toBe(0);
    // What the demo does at restart: the dead process's leases end now.
    releaseLeases(database, { holderPrefix: prefix });
    const second = runChild('run-pipeline.mjs', { ...common, untilDone: true });
    await finishes(second);
    expect(sinkSummary(database)).toEqual({ n: N, d: N, lo: 1, hi: N });
    const byId = new Map(sinkRows(database).map((r) => [r.id, r.pid]));
    for (const r of committed) expect(byId.get(r.id), `row ${r.id} committed by the killed run`).toBe(first.process.pid);
    expect(countPending(database)).toBe(0);
    expect(deadLetters(database)).toEqual([]);
  }, 120_000);

  test('2 processes on one file, SIGKILLed at random early and late moments and restarted: every row processed, the queue empty, the sink holds each row exactly once', async () => {
    const N = 10_000;
    const KILLS = 6;
    const database = queueWith(N);
    // A 3 s lease: the survivor takes a dead process's rows over once its leases run out. A lease
    // that runs out counts a delivery, not an attempt: killing fewer than maxDeliveries (50) times
    // never dead-letters a row.
    const arg = { mode: 'queue', database, runtime: 'threads', concurrency: 1, maxDemand: 100, batchSize: 100, exactlyOnce: true, leaseMs: 3000, prefetch: 200, untilDone: true };
    const started = new Map<Child, number>();
    const live = new Set<Child>();
    const all: Child[] = [];
    const spawnOne = () => {
      const child = runChild('run-pipeline.mjs', arg);
      started.set(child, Date.now());
      live.add(child);
      all.push(child);
      void child.exited.then(() => live.delete(child));
    };
    spawnOne();
    spawnOne();
    const killed = new Set<Child>();
    let lateKills = 0;
    const committedBy = (pid: number) => sinkRows(database).filter((r) => r.pid === pid).length;
    try {
      for (let k = 0; k < KILLS && countPending(database) > 0; k++) {
        const victims = [...live];
        if (victims.length === 0) break;
        const victim = victims[Math.floor(Math.random() * victims.length)]!;
        if (k % 2 === 0) {
          // Early: during start-up or the first claims, 20-400 ms after the process started.
          const at = started.get(victim)! + 20 + Math.floor(Math.random() * 380);
          await sleep(Math.max(0, at - Date.now()));
        } else {
          // Late: once it has committed, 0-1.5 s into its work.
          await waitFor(() => committedBy(victim.process.pid!) > 0 || !live.has(victim) || countPending(database) === 0, 'a commit of the victim', 60_000);
          await sleep(Math.floor(Math.random() * 1500));
        }
        if (!live.has(victim) || countPending(database) === 0) continue;
        victim.process.kill('SIGKILL');
        killed.add(victim);
        if (k % 2 === 1) lateKills++;
        await victim.exited;
        spawnOne();
      }
      await Promise.all(all.map((c) => c.exited));
      for (const c of all.filter((c) => !killed.has(c))) await finishes(c);
      expect(killed.size).toBeGreaterThan(0);
      expect(countPending(database)).toBe(0);
      expect(deadLetters(database)).toEqual([]);
      expect(sinkSummary(database)).toEqual({ n: N, d: N, lo: 1, hi: N });
      // Rows committed by killed processes were not written again by another.
      if (lateKills > 0) {
        const pids = new Set(sinkRows(database).map((r) => r.pid));
        expect([...killed].some((c) => pids.has(c.process.pid!))).toBe(true);
      }
    } finally {
      for (const c of live) c.process.kill('SIGKILL');
    }
  }, 240_000);
});
