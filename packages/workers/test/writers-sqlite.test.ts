// Bulk writers against a real SQLite file (better-sqlite3), one fresh database file per test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectCount, sqliteRepo, timestamps, type Entry, type Repo } from '@throughway/workers';

const dir = mkdtempSync(join(tmpdir(), 'throughway-writers-'));
let db: Database.Database;
let repo: Repo;
let seq = 0;

const SCHEMA = `
  CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT, email TEXT, inserted_at TEXT, updated_at TEXT);
  CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    amount INTEGER NOT NULL,
    inserted_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE things (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL DEFAULT 'none',
    flag INTEGER,
    data TEXT,
    bin BLOB,
    big INTEGER,
    at TEXT,
    doubled INTEGER GENERATED ALWAYS AS (id * 2) VIRTUAL
  );
  CREATE TABLE "odd ""name""" ("a b" TEXT, "c""d" INTEGER);
`;

beforeEach(() => {
  db = new Database(join(dir, `t${++seq}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.exec(SCHEMA);
  repo = sqliteRepo(db);
});
afterEach(() => db.close());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const all = (sql: string) => db.prepare(sql).all();
const ts = timestamps(new Date('2024-05-06T07:08:09.010Z'));
const ISO = '2024-05-06T07:08:09.010Z';

function customers(n: number, from = 0) {
  return Array.from({ length: n }, (_, i) => ({ id: `cus_${from + i}`, name: `Customer ${from + i}`, email: `c${from + i}@x.test`, ...ts }));
}

describe('sqliteRepo.insertAll', () => {
  it('inserts rows and reports the count', async () => {
    const result = await repo.insertAll('customers', customers(3));
    expect(result).toEqual({ count: 3 });
    expect(all('SELECT * FROM customers ORDER BY id')).toEqual([
      { id: 'cus_0', name: 'Customer 0', email: 'c0@x.test', inserted_at: ISO, updated_at: ISO },
      { id: 'cus_1', name: 'Customer 1', email: 'c1@x.test', inserted_at: ISO, updated_at: ISO },
      { id: 'cus_2', name: 'Customer 2', email: 'c2@x.test', inserted_at: ISO, updated_at: ISO },
    ]);
  });

  it('converts values: booleans, Dates, bytes, JSON, bigint, null; absent keys get the DEFAULT', async () => {
    const result = await repo.insertAll('things', [
      { id: 1, label: 'a', flag: true, data: { x: [1, 'two'] }, bin: Buffer.from([0, 255]), big: 2n ** 62n, at: new Date(0) },
      { id: 2, flag: false, data: [1, 2], bin: new Uint8Array([7]), big: null, at: undefined },
      { id: 3 },
    ]);
    expect(result.count).toBe(3);
    const rows = db.prepare('SELECT id, label, flag, data, bin, big, at, doubled FROM things ORDER BY id').safeIntegers(true).all();
    expect(rows).toEqual([
      { id: 1n, label: 'a', flag: 1n, data: '{"x":[1,"two"]}', bin: Buffer.from([0, 255]), big: 2n ** 62n, at: '1970-01-01T00:00:00.000Z', doubled: 2n },
      { id: 2n, label: 'none', flag: 0n, data: '[1,2]', bin: Buffer.from([7]), big: null, at: null, doubled: 4n },
      { id: 3n, label: 'none', flag: null, data: null, bin: null, big: null, at: null, doubled: 6n },
    ]);
  });

  it('quotes odd table and column names', async () => {
    await repo.insertAll('odd "name"', [{ 'a b': 'x', 'c"d': 1 }]);
    expect(all('SELECT * FROM "odd ""name"""')).toEqual([{ 'a b': 'x', 'c"d': 1 }]);
  });

  it("onConflict 'nothing' skips conflicting rows and does not count them", async () => {
    await repo.insertAll('customers', [{ id: 'cus_1', name: 'Original', ...ts }]);
    const result = await repo.insertAll('customers', customers(3), { onConflict: 'nothing' });
    expect(result.count).toBe(2);
    expect(all('SELECT id, name FROM customers ORDER BY id')).toEqual([
      { id: 'cus_0', name: 'Customer 0' },
      { id: 'cus_1', name: 'Original' },
      { id: 'cus_2', name: 'Customer 2' },
    ]);
    // With an explicit target too.
    const again = await repo.insertAll('customers', customers(4), { onConflict: 'nothing', conflictTarget: ['id'] });
    expect(again.count).toBe(1);
  });

  it("onConflict 'replace_all_except_primary_key' updates every given column but the key", async () => {
    await repo.insertAll('customers', [{ id: 'cus_1', name: 'Placeholder', email: null, ...timestamps(new Date(0)) }]);
    const result = await repo.insertAll('customers', customers(2), {
      onConflict: 'replace_all_except_primary_key',
      conflictTarget: ['id'],
    });
    expect(result.count).toBe(2); // 1 inserted + 1 updated, as Postgres and Ecto count
    expect(all('SELECT * FROM customers ORDER BY id')).toEqual([
      { id: 'cus_0', name: 'Customer 0', email: 'c0@x.test', inserted_at: ISO, updated_at: ISO },
      { id: 'cus_1', name: 'Customer 1', email: 'c1@x.test', inserted_at: ISO, updated_at: ISO },
    ]);
    // conflictTarget defaults to the primary key; columns absent from the entries are kept.
    await repo.insertAll('customers', [{ id: 'cus_0', name: 'Renamed' }], { onConflict: 'replace_all_except_primary_key' });
    expect(all("SELECT name, email FROM customers WHERE id = 'cus_0'")).toEqual([{ name: 'Renamed', email: 'c0@x.test' }]);
  });

  it('onConflict { replace } updates only the listed columns', async () => {
    await repo.insertAll('customers', [{ id: 'cus_0', name: 'Old', email: 'old@x.test', ...ts }]);
    const result = await repo.insertAll('customers', [{ id: 'cus_0', name: 'New', email: 'new@x.test', ...ts }], {
      onConflict: { replace: ['email'] },
      conflictTarget: ['id'],
    });
    expect(result.count).toBe(1);
    expect(all('SELECT name, email FROM customers')).toEqual([{ name: 'Old', email: 'new@x.test' }]);
  });

  it('returns the requested columns, skipping rows that conflicted', async () => {
    const first = await repo.insertAll('things', [{ id: 1, label: 'a' }, { id: 2 }], { returning: ['id', 'label', 'doubled'] });
    expect(first).toEqual({
      count: 2,
      rows: [
        { id: 1, label: 'a', doubled: 2 },
        { id: 2, label: 'none', doubled: 4 },
      ],
    });
    const second = await repo.insertAll('things', [{ id: 2 }, { id: 3, flag: true }], { onConflict: 'nothing', returning: true });
    expect(second).toEqual({
      count: 1,
      rows: [{ id: 3, label: 'none', flag: 1, data: null, bin: null, big: null, at: null, doubled: 6 }],
    });
    const upsert = await repo.insertAll('things', [{ id: 3, label: 'c' }], {
      onConflict: 'replace_all_except_primary_key',
      returning: ['id', 'label'],
    });
    expect(upsert).toEqual({ count: 1, rows: [{ id: 3, label: 'c' }] });
  });

  it('fails with the database message on a foreign-key violation, writing nothing of the call', async () => {
    await repo.insertAll('customers', customers(1));
    const orders = Array.from({ length: 300 }, (_, i) => ({
      id: `ord_${i}`,
      customer_id: i === 250 ? 'cus_035751878' : 'cus_0',
      amount: i,
      ...ts,
    }));
    await expect(repo.insertAll('orders', orders)).rejects.toMatchObject({
      message: 'FOREIGN KEY constraint failed',
      code: 'SQLITE_CONSTRAINT_FOREIGNKEY',
    });
    expect(all('SELECT count(*) AS n FROM orders')).toEqual([{ n: 0 }]);
  });

  it('rejects an unknown column before writing anything', async () => {
    const entries: Entry[] = customers(500);
    entries[499] = { ...entries[499], nickname: 'oops' };
    const error = await repo.insertAll('customers', entries).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ThroughwayError', code: 'ERR_THROUGHWAY_UNKNOWN_COLUMN', details: { table: 'customers', column: 'nickname' } });
    expect((error as Error).message).toMatch(/unknown column "nickname".*customers/);
    // A misspelt key in an entry with as many keys as the others is caught too.
    const typo: Entry[] = customers(300);
    const { email, ...rest } = typo[200];
    typo[200] = { ...rest, emial: email };
    await expect(repo.insertAll('customers', typo)).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_COLUMN', details: { column: 'emial' } });
    // An entry with no columns at all is rejected, naming its index.
    await expect(repo.insertAll('customers', [...customers(2), {}])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_VALUE', details: { index: 2 } });
    expect(all('SELECT count(*) AS n FROM customers')).toEqual([{ n: 0 }]);
    // A generated column cannot be written either.
    await expect(repo.insertAll('things', [{ id: 1, doubled: 5 }])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_COLUMN' });
    // Nor can an option name a column the table does not have.
    await expect(repo.insertAll('customers', customers(1), { returning: ['nope'] })).rejects.toThrow(/unknown column "nope" in option returning/);
  });

  it('rejects an unknown table', async () => {
    const error = await repo.insertAll('no_such_table', [{ id: 1 }]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_TABLE', details: { table: 'no_such_table' } });
    expect((error as Error).message).toContain('no_such_table');
    await expect(repo.insertAll('nope.customers', [{ id: 1 }])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_TABLE' });
    // schema.table with a real schema works.
    await expect(repo.insertAll('main.customers', customers(1))).resolves.toEqual({ count: 1 });
  });

  it('rejects bad options naming the option', async () => {
    const cases: [unknown, string][] = [
      [{ onConflict: 'update' }, 'onConflict'],
      [{ onConflict: { replace: [] } }, 'onConflict.replace'],
      [{ conflict_target: ['id'] }, 'conflict_target'],
      [{ conflictTarget: ['id'] }, 'conflictTarget'], // not allowed with 'raise'
      [{ onConflict: 'nothing', conflictTarget: 'id' }, 'conflictTarget'],
      [{ returning: 'id' }, 'returning'],
    ];
    for (const [options, option] of cases) {
      const error = await repo.insertAll('customers', customers(1), options as never).catch((e: unknown) => e);
      expect(error, JSON.stringify(options)).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', details: { option } });
      expect((error as Error).message).toContain(`\`${option}\``);
    }
    await expect(repo.insertAll('customers', [null] as never)).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_VALUE' });
    await expect(repo.insertAll('things', [{ id: 1, label: () => 1 }] as never)).rejects.toThrow(/column "label"/);
    expect(all('SELECT count(*) AS n FROM customers')).toEqual([{ n: 0 }]);
  });

  it('splits a batch larger than the parameter limit (40,000 rows x 5 columns)', async () => {
    await repo.insertAll('customers', customers(10));
    const n = 40_000;
    const orders = Array.from({ length: n }, (_, i) => ({ id: `ord_${i}`, customer_id: `cus_${i % 10}`, amount: i, ...ts }));
    expect((await repo.insertAll('orders', orders)).count).toBe(n);
    expect(all('SELECT count(*) AS n, sum(amount) AS s, min(inserted_at) AS t FROM orders')).toEqual([
      { n, s: (n * (n - 1)) / 2, t: ISO },
    ]);
    // The same rows again as an upsert: every row conflicts and counts.
    const upsert = await repo.insertAll('orders', orders.map((o) => ({ ...o, amount: 1 })), { onConflict: 'replace_all_except_primary_key' });
    expect(upsert.count).toBe(n);
    expect(all('SELECT sum(amount) AS s FROM orders')).toEqual([{ s: n }]);
  });

  it('writes entries with different key sets, each group with its own columns', async () => {
    const result = await repo.insertAll('things', [{ id: 1, label: 'a' }, { id: 2, flag: 1 }, { label: 'c', id: 3 }, { id: 4, label: undefined }]);
    expect(result.count).toBe(4);
    expect(all('SELECT id, label, flag FROM things ORDER BY id')).toEqual([
      { id: 1, label: 'a', flag: null },
      { id: 2, label: 'none', flag: 1 },
      { id: 3, label: 'c', flag: null },
      { id: 4, label: 'none', flag: null },
    ]);
  });

  it('groups by defined keys: repeated objects, undefined values and key order', async () => {
    const x = { 'a b': 'x', 'c"d': undefined };
    const entries = [{ 'a b': '1', 'c"d': 1 }, x, { 'c"d': 3, 'a b': '3' }, x, { 'a b': '5' }];
    const result = await repo.insertAll('odd "name"', entries, { returning: true });
    // Written group by group, each group in input order.
    const expected = [
      { 'a b': '1', 'c"d': 1 },
      { 'a b': '3', 'c"d': 3 },
      { 'a b': 'x', 'c"d': null },
      { 'a b': 'x', 'c"d': null },
      { 'a b': '5', 'c"d': null },
    ];
    expect(result).toEqual({ count: 5, rows: expected });
    expect(all('SELECT * FROM "odd ""name""" ORDER BY rowid')).toEqual(expected);
  });

  it('returns { count: 0 } for no entries', async () => {
    expect(await repo.insertAll('customers', [])).toEqual({ count: 0 });
    expect(await repo.insertAll('customers', [], { returning: true })).toEqual({ count: 0, rows: [] });
  });
});

describe('sqliteRepo.transaction', () => {
  it('commits several inserts together (placeholder customers, then orders)', async () => {
    const count = await repo.transaction(async (tx) => {
      await tx.insertAll('customers', [{ id: 'cus_9' }], { onConflict: 'nothing' });
      return (await tx.insertAll('orders', [{ id: 'ord_1', customer_id: 'cus_9', amount: 4857, ...ts }])).count;
    });
    expect(count).toBe(1);
    expect(all('SELECT id, customer_id, amount FROM orders')).toEqual([{ id: 'ord_1', customer_id: 'cus_9', amount: 4857 }]);
  });

  it('rolls everything back when a later insert fails', async () => {
    const failing = repo.transaction(async (tx) => {
      await tx.insertAll('customers', customers(5));
      await tx.insertAll('orders', [{ id: 'ord_1', customer_id: 'cus_missing', amount: 1, ...ts }]);
    });
    await expect(failing).rejects.toThrow('FOREIGN KEY constraint failed');
    expect(all('SELECT count(*) AS n FROM customers')).toEqual([{ n: 0 }]);
    expect(db.inTransaction).toBe(false);
  });

  it('fails the batch and rolls back with expectCount when rows were skipped', async () => {
    await repo.insertAll('customers', customers(1));
    const entries = customers(3);
    const error = await repo
      .transaction(async (tx) => expectCount(await tx.insertAll('customers', entries, { onConflict: 'nothing' }), entries))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_THROUGHWAY_COUNT_MISMATCH', details: { expected: 3, actual: 2 } });
    expect((error as Error).message).toBe('insertAll wrote 2 rows, expected 3');
    expect(all('SELECT id FROM customers')).toEqual([{ id: 'cus_0' }]);
    expect(expectCount({ count: 2 }, 2)).toEqual({ count: 2 });
  });

  it('nests with savepoints: an inner failure caught by the caller keeps the outer work', async () => {
    await repo.transaction(async (tx) => {
      await tx.insertAll('customers', customers(1));
      await expect(
        tx.transaction(async (inner) => {
          await inner.insertAll('customers', customers(1, 1));
          throw new Error('inner failure');
        }),
      ).rejects.toThrow('inner failure');
      await tx.insertAll('customers', customers(1, 2));
    });
    expect(all('SELECT id FROM customers ORDER BY id')).toEqual([{ id: 'cus_0' }, { id: 'cus_2' }]);
  });
});
