// The placeholder/upsert race of the seed's Act III, batch by batch, on SQLite and Postgres: orders
// before customers, customers before orders, in any order across batches, with redeliveries. It
// must always end with full customer rows for every customer that was announced.
import path from 'node:path';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresRepo, sqliteRepo, timestamps, type Repo } from '@throughway/workers';
import { connectPostgres, openSqlite, parseDatabase, tableName, type DatabaseTarget } from '../src/database.js';
import type { CustomerEntry, OrderEntry } from '../src/decode.js';
import { Random } from '../src/prng.js';
import { migratePostgres, migrateSqlite } from '../src/schema.js';
import { writeCustomers, writeOrders, type Tables } from '../src/writer.js';
import { dropSchema, pgUrl, tempDir, uniqueSchema } from './helpers.js';

type Batch = { kind: 'customers'; rows: CustomerEntry[] } | { kind: 'orders'; rows: OrderEntry[] };

interface Db {
  target: DatabaseTarget;
  repo: Repo;
  tables: Tables;
  reset(): Promise<void>;
  query<T>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

const CUSTOMERS = 40;
const customer = (i: number): CustomerEntry => ({ id: `cus_${String(i).padStart(3, '0')}`, name: `Customer ${i}`, email: `c${i}@example.com` });
// Customer 39 is never announced: its orders keep a placeholder.
const LOST = customer(CUSTOMERS - 1).id;

/** Batches of a small world, shuffled by `seed`, some of them delivered twice. */
function scenario(seed: number): Batch[] {
  const rng = new Random(seed);
  const customers = Array.from({ length: CUSTOMERS - 1 }, (_, i) => customer(i));
  const orders = Array.from({ length: 160 }, (_, i): OrderEntry => ({ id: `ord_${String(i).padStart(4, '0')}`, customer_id: customer(rng.int(0, CUSTOMERS - 1)).id, amount: rng.int(1, 9999) }));
  orders[0]!.customer_id = LOST;
  const batches: Batch[] = [];
  for (let i = 0; i < customers.length; i += 7) batches.push({ kind: 'customers', rows: customers.slice(i, i + 7) });
  for (let i = 0; i < orders.length; i += 20) batches.push({ kind: 'orders', rows: orders.slice(i, i + 20) });
  // Redeliveries: whole batches again, and one event twice inside one batch.
  batches.push(batches[rng.int(0, batches.length - 1)]!, batches[rng.int(0, batches.length - 1)]!);
  batches.push({ kind: 'customers', rows: [customers[3]!, customers[3]!] });
  batches.push({ kind: 'orders', rows: [orders[5]!, orders[5]!] });
  for (let i = batches.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [batches[i], batches[j]] = [batches[j]!, batches[i]!];
  }
  return batches;
}

async function apply(db: Db, batch: Batch): Promise<void> {
  if (batch.kind === 'customers') await writeCustomers(db.repo, db.tables, batch.rows, timestamps());
  else await writeOrders(db.repo, db.tables, batch.rows, timestamps());
}

async function expectFinalState(db: Db, expectedOrders: number): Promise<void> {
  const c = db.tables.customers;
  const o = db.tables.orders;
  const rows = await db.query<{ id: string; name: string | null; email: string | null; placeholder: unknown }>(`SELECT id, name, email, placeholder FROM ${c} ORDER BY id`);
  const full = rows.filter((r) => !r.placeholder);
  const waiting = rows.filter((r) => r.placeholder);
  expect(full.map((r) => ({ id: r.id, name: r.name, email: r.email }))).toEqual(Array.from({ length: CUSTOMERS - 1 }, (_, i) => customer(i)));
  expect(waiting.map((r) => [r.id, r.name, r.email])).toEqual([[LOST, null, null]]);
  const [orders] = await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${o}`);
  expect(Number(orders!.n)).toBe(expectedOrders);
}

function suite(name: string, open: () => Promise<Db>): void {
  describe(`placeholder/upsert race on ${name}`, () => {
    let db: Db;
    beforeAll(async () => {
      db = await open();
    });
    afterAll(async () => {
      await db?.close();
    });

    it.each([1, 2, 3, 4, 5, 6])('ends with full customer rows whatever the batch order (seed %i)', async (seed) => {
      await db.reset();
      for (const batch of scenario(seed)) await apply(db, batch);
      await expectFinalState(db, 160);
    });

    it('fills a placeholder that an order created first, and never overwrites a real customer', async () => {
      await db.reset();
      const ada = customer(1);
      const first: OrderEntry = { id: 'ord_a', customer_id: ada.id, amount: 100 };
      const second: OrderEntry = { id: 'ord_b', customer_id: ada.id, amount: 200 };
      expect(await writeOrders(db.repo, db.tables, [first])).toEqual({ inserted: 1, placeholders: 1 });
      expect(await writeCustomers(db.repo, db.tables, [ada])).toBe(1);
      // The customer exists now: the placeholder insert does nothing, the real row stays.
      expect(await writeOrders(db.repo, db.tables, [second, first])).toEqual({ inserted: 1, placeholders: 0 });
      const rows = await db.query<{ id: string; name: string; placeholder: unknown }>(`SELECT id, name, placeholder FROM ${db.tables.customers}`);
      expect(rows.map((r) => [r.id, r.name, Boolean(r.placeholder)])).toEqual([[ada.id, ada.name, false]]);
    });

    it('rejects an order whose customer is missing when written without its placeholder', async () => {
      await db.reset();
      const insert = db.repo.insertAll(db.tables.orders, [{ id: 'ord_x', customer_id: 'cus_none', amount: 1, ...timestamps() }]);
      await expect(insert).rejects.toThrow(/foreign key/i);
    });
  });
}

suite('SQLite', async () => {
  const { dir, cleanup } = tempDir();
  const target = parseDatabase(path.join(dir, 'race.db')) as Extract<DatabaseTarget, { kind: 'sqlite' }>;
  const sqlite: Database.Database = openSqlite(target.path);
  migrateSqlite(sqlite);
  return {
    target,
    repo: sqliteRepo(sqlite),
    tables: { customers: tableName(target, 'customers'), orders: tableName(target, 'orders') },
    async reset() {
      sqlite.exec('DELETE FROM orders; DELETE FROM customers;');
    },
    async query<T>(sql: string) {
      return sqlite.prepare(sql).all() as T[];
    },
    async close() {
      sqlite.close();
      cleanup();
    },
  };
});

suite('Postgres', async () => {
  const schema = uniqueSchema('race');
  const target = parseDatabase(pgUrl(schema)) as Extract<DatabaseTarget, { kind: 'postgres' }>;
  const client: pg.Client = await connectPostgres(target);
  await migratePostgres(client, schema);
  return {
    target,
    repo: postgresRepo(client),
    tables: { customers: tableName(target, 'customers'), orders: tableName(target, 'orders') },
    async reset() {
      await client.query(`TRUNCATE "${schema}".orders, "${schema}".customers`);
    },
    async query<T>(sql: string) {
      return (await client.query(sql)).rows as T[];
    },
    async close() {
      await client.end();
      await dropSchema(schema);
    },
  };
});

describe('two Postgres batch workers at once', () => {
  const schema = uniqueSchema('pair');
  let a: pg.Client;
  let b: pg.Client;
  beforeAll(async () => {
    const target = parseDatabase(pgUrl(schema)) as Extract<DatabaseTarget, { kind: 'postgres' }>;
    a = await connectPostgres(target);
    b = await connectPostgres(target);
    await migratePostgres(a, schema);
  });
  afterAll(async () => {
    await a?.end();
    await b?.end();
    await dropSchema(schema);
  });

  it('customers on one connection and orders on another neither deadlock nor lose data', async () => {
    const tables = { customers: `${schema}.customers`, orders: `${schema}.orders` };
    const ra = postgresRepo(a);
    const rb = postgresRepo(b);
    const batches = Array.from({ length: 6 }, (_, s) => scenario(100 + s)).flat();
    const customers = batches.filter((x) => x.kind === 'customers');
    const orders = batches.filter((x) => x.kind === 'orders');
    await Promise.all([
      (async () => {
        for (const x of customers) await writeCustomers(ra, tables, x.rows);
      })(),
      (async () => {
        for (const x of orders) await writeOrders(rb, tables, x.rows);
      })(),
    ]);
    const { rows } = await a.query(`SELECT count(*) FILTER (WHERE placeholder) AS waiting, count(*) FILTER (WHERE NOT placeholder) AS full FROM ${tables.customers}`);
    expect(rows[0]).toEqual({ waiting: '1', full: String(CUSTOMERS - 1) });
  });
});
