// The demo end to end on SQLite (see demo-suite.ts).
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqlite } from '../src/database.js';
import { orderId } from '../src/generator.js';
import { migrateSqlite } from '../src/schema.js';
import type { RunSummary } from '../src/summary.js';
import { demoSuite, type Place } from './demo-suite.js';
import { runCli, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir('mystex-demo-sqlite-');
afterAll(cleanup);

demoSuite(
  {
    name: 'SQLite',
    place: (tag) => ({ database: path.join(dir, `${tag}.db`), queue: path.join(dir, `${tag}-queue.db`) }),
    async snapshot(place: Place) {
      const db = new Database(place.database, { readonly: true });
      try {
        const customers = (db.prepare('SELECT id, name, email, placeholder FROM customers').raw().all() as unknown[][]).map((r) => JSON.stringify([r[0], r[1], r[2], Boolean(r[3])]));
        const orders = (db.prepare('SELECT id, customer_id, amount FROM orders').raw().all() as unknown[][]).map((r) => JSON.stringify(r));
        return { customers: customers.sort(), orders: orders.sort() };
      } finally {
        db.close();
      }
    },
    async cleanup() {
      // The temp dir goes at the end of the file (afterAll below): later tests use it too.
    },
  },
  { small: 8_000, interrupted: 20_000, rateLimit: '2000/100ms' },
);

describe('the demo when the database refuses a write', () => {
  it('retries the batch, dead-letters what keeps failing, and exits 1 with a failed check', async () => {
    // A table that refuses one order: every batch holding it fails, five deliveries in a row.
    const database = path.join(dir, 'refusing.db');
    const db = openSqlite(database);
    migrateSqlite(db);
    db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON orders WHEN NEW.id = '${orderId(6)}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`);
    db.close();
    const run = await runCli(['--database', database, '--queue', path.join(dir, 'refusing-queue.db'), '--events', '3000', '--json', '--log-level', 'warn']);
    expect(run.code).toBe(1);
    const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as RunSummary;
    expect(summary.check?.ok).toBe(false);
    const failing = summary.check!.lines.filter((l) => !l.ok).map((l) => l.name);
    expect(failing).toContain('orders');
    expect(failing).toContain('dead letters for any other reason');
    expect(run.stderr).toContain('a batch failed (refused by the test)');
    expect(summary.queueState!.deadLetters.other).toBeGreaterThan(0);

    // The failed run kept its files; the same command again starts over instead of resuming the
    // finished queue and repeating the failed check (the trigger goes with the removed file).
    const rerun = await runCli(['--database', database, '--queue', path.join(dir, 'refusing-queue.db'), '--events', '3000', '--json', '--log-level', 'info']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toContain('held a run that finished at');
    const again = JSON.parse(rerun.stdout.trim().split('\n').at(-1)!) as RunSummary;
    expect(again).toMatchObject({ resumed: false, processed: 3000 });
    expect(again.check?.ok).toBe(true);
  });
});
