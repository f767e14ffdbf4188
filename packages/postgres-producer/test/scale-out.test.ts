// Scale-out with real child processes: 3 processes share one queue of 100,000 rows and are killed
// with SIGKILL at random moments and restarted. Every row is processed, none is left, none was
// handed to a live process while another live process held it, and in exactly-once mode the
// sink holds each row exactly once.
import { describe, expect, test } from 'vitest';
import { enqueue, migrate, queueCounts } from '@throughway/postgres-producer';
import { PG_URL, runChild, sleep, testPool, uniqueTable, waitFor, type Child } from './helpers.js';

const ROWS = 100_000;
const PROCESSES = 3;
const KILLS = 4;
const LEASE_MS = 3000;

describe.each([false, true])('3 processes, SIGKILL loop [exactly-once: %s]', (exactlyOnce) => {
  test(`${ROWS} rows: all processed, none left, no row held by two live processes${exactlyOnce ? ', the sink holds each row once' : ''}`, async () => {
    const pool = testPool();
    const table = uniqueTable('twscale');
    await migrate(pool, { table });
    await pool.query(`CREATE TABLE "${table}_claims" (id bigint NOT NULL, lease bigint NOT NULL, pid int NOT NULL, at timestamptz NOT NULL)`);
    await pool.query(`CREATE TABLE "${table}_sink" (id bigint NOT NULL, payload text NOT NULL)`); // no key: a duplicate must show
    await pool.query(`CREATE TEMP TABLE kills (pid int, at timestamptz)`);
    await enqueue(pool, Array.from({ length: ROWS }, (_, i) => String(i + 1)), { table });
    const arg = { url: PG_URL, table, exactlyOnce, leaseMs: LEASE_MS };
    const live = new Set<Child>();
    const all: Child[] = [];
    const spawnOne = () => {
      const child = runChild('run-queue.mjs', arg);
      live.add(child);
      all.push(child);
      void child.exited.then(() => live.delete(child));
    };
    for (let i = 0; i < PROCESSES; i++) spawnOne();
    const kills: number[] = [];
    const client = await pool.connect();
    try {
      for (let k = 0; k < KILLS; k++) {
        // Kill only while work remains, at a random moment, a random live process that has started.
        await waitFor(async () => (await client.query(`SELECT count(*)::int AS n FROM "${table}_claims"`)).rows[0].n > 0, 'work under way', 60_000);
        await sleep(200 + Math.floor(Math.random() * 600));
        const started = [...live].filter((c) => c.output().includes('started'));
        if (started.length === 0) continue;
        const victim = started[Math.floor(Math.random() * started.length)]!;
        const remaining = (await queueCounts(client, { table })).ready;
        if (remaining === 0) break;
        victim.process.kill('SIGKILL');
        // The moment of death on the database's clock, for the overlap check below.
        await client.query(`INSERT INTO kills VALUES ($1, clock_timestamp())`, [victim.process.pid]);
        kills.push(victim.process.pid!);
        await victim.exited;
        spawnOne();
      }
      const results = await Promise.all(all.map((c) => c.exited));
      const unkilled = all.filter((c) => !kills.includes(c.process.pid!));
      for (const c of unkilled) expect(results[all.indexOf(c)], c.output()).toEqual({ code: 0, signal: null });
      expect(kills.length).toBeGreaterThan(0);

      expect(await queueCounts(client, { table })).toEqual({ ready: 0, leased: 0, delayed: 0, done: 0, dead: 0 });
      const { rows: cover } = await client.query(`SELECT count(DISTINCT id)::int AS d, min(id)::int AS lo, max(id)::int AS hi FROM "${table}_claims"`);
      expect(cover[0]).toEqual({ d: ROWS, lo: 1, hi: ROWS });
      // A row processed more than once: each earlier delivery's process was dead (killed) before the next delivery was processed.
      const { rows: overlaps } = await client.query(`
        WITH d AS (SELECT id, pid, lease, at, lag(pid) OVER w AS prev_pid, lag(lease) OVER w AS prev_lease FROM "${table}_claims" WINDOW w AS (PARTITION BY id ORDER BY at))
        SELECT d.id, d.pid, d.prev_pid FROM d LEFT JOIN kills k ON k.pid = d.prev_pid
        WHERE d.prev_pid IS NOT NULL AND d.lease <> d.prev_lease AND (k.at IS NULL OR k.at > d.at) LIMIT 5`);
      expect(overlaps).toEqual([]);
      if (exactlyOnce) {
        const { rows } = await client.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM "${table}_sink"`);
        expect(rows[0]).toEqual({ n: ROWS, d: ROWS });
        // And each row's one committed delivery is its only record: no claim without its write.
        const { rows: claims } = await client.query(`SELECT count(*)::int AS n FROM "${table}_claims"`);
        expect(claims[0].n).toBe(ROWS);
      }
    } finally {
      client.release();
      for (const c of live) c.process.kill('SIGKILL');
    }
  }, 180_000);
});
