// Bulk writers against the local PostgreSQL server (database `test`), in a schema unique to this run.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectCount, postgresRepo, timestamps, type Entry, type Repo } from '@throughway/workers';

const connection = {
  host: process.env.PGHOST ?? '/var/run/postgresql',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};
const schema = `tw_writers_${process.pid}_${randomBytes(4).toString('hex')}`;
const S = `"${schema}"`;
let client: pg.Client;
let pool: pg.Pool;
let repo: Repo;

const ts = timestamps(new Date('2024-05-06T07:08:09.010Z'));
const ISO = '2024-05-06T07:08:09.010Z';

beforeAll(async () => {
  // Times and numbers as text, so assertions do not depend on the machine's time zone or pg's parsers.
  client = new pg.Client({ ...connection, types: { getTypeParser: () => (v: string) => v } as never });
  await client.connect();
  await client.query(`CREATE SCHEMA ${S}`);
  await client.query(`SET search_path TO ${S}`);
  pool = new pg.Pool({ ...connection, max: 2, options: `-c search_path=${schema}` });
});

afterAll(async () => {
  await client.query(`DROP SCHEMA ${S} CASCADE`);
  await client.end();
  await pool.end();
});

beforeEach(async () => {
  await client.query(`
    DROP TABLE IF EXISTS orders, customers, things, wide, "odd ""name""";
    CREATE TABLE customers (id text PRIMARY KEY, name text, email text, inserted_at timestamp, updated_at timestamp);
    CREATE TABLE orders (
      id text PRIMARY KEY,
      customer_id text NOT NULL REFERENCES customers(id),
      amount integer NOT NULL,
      inserted_at timestamp NOT NULL,
      updated_at timestamp NOT NULL
    );
    CREATE TABLE things (
      id serial PRIMARY KEY,
      label varchar(8) NOT NULL DEFAULT 'none',
      flag boolean,
      data jsonb,
      tags text[],
      nums integer[],
      bin bytea,
      big bigint,
      price numeric(10, 2),
      at timestamptz,
      doubled integer GENERATED ALWAYS AS (id * 2) STORED
    );
    CREATE TABLE "odd ""name""" ("a b" text, "c""d" integer);
  `);
  repo = postgresRepo(client);
});

const rows = async (sql: string) => (await client.query(sql)).rows;

function customers(n: number, from = 0) {
  return Array.from({ length: n }, (_, i) => ({ id: `cus_${from + i}`, name: `Customer ${from + i}`, email: `c${from + i}@x.test`, ...ts }));
}

describe('postgresRepo.insertAll', () => {
  it('inserts rows (unnest path) and reports the count', async () => {
    expect(await repo.insertAll('customers', customers(2))).toEqual({ count: 2 });
    expect(await rows('SELECT * FROM customers ORDER BY id')).toEqual([
      { id: 'cus_0', name: 'Customer 0', email: 'c0@x.test', inserted_at: '2024-05-06 07:08:09.01', updated_at: '2024-05-06 07:08:09.01' },
      { id: 'cus_1', name: 'Customer 1', email: 'c1@x.test', inserted_at: '2024-05-06 07:08:09.01', updated_at: '2024-05-06 07:08:09.01' },
    ]);
  });

  it('converts values: booleans, JSON, arrays, bytes, bigint, numeric, Dates, null; absent keys get the DEFAULT', async () => {
    const tricky = 'tab\there, "quotes", back\\slash, {braces}, new\nline';
    const entries = [
      { id: 1, label: 'a', flag: true, data: { x: [1, 'two'], s: tricky }, tags: ['a', tricky, null], nums: [1, 2], bin: Buffer.from([0, 255]), big: 2n ** 62n, price: 12.5, at: new Date(0) },
      { id: 2, flag: false, data: [1, 2], tags: [], nums: [[1, 2], [3, 4]], bin: new Uint8Array([7]), big: '42', price: '0.10', at: ISO },
      { id: 3, data: 'null', label: tricky.slice(0, 8) },
      { id: 4, data: true },
    ];
    const check = async () =>
      expect(await rows('SELECT id, label, flag, data::text, tags::text, nums::text, bin::text, big, price, at AT TIME ZONE \'UTC\' AS at, doubled FROM things ORDER BY id')).toEqual([
        { id: '1', label: 'a', flag: 't', data: `{"s": ${JSON.stringify(tricky)}, "x": [1, "two"]}`, tags: `{a,"tab\there, \\"quotes\\", back\\\\slash, {braces}, new\nline",NULL}`, nums: '{1,2}', bin: '\\x00ff', big: '4611686018427387904', price: '12.50', at: '1970-01-01 00:00:00', doubled: '2' },
        { id: '2', label: 'none', flag: 'f', data: '[1, 2]', tags: '{}', nums: '{{1,2},{3,4}}', bin: '\\x07', big: '42', price: '0.10', at: '2024-05-06 07:08:09.01', doubled: '4' },
        { id: '3', label: 'tab\there', flag: null, data: 'null', tags: null, nums: null, bin: null, big: null, price: null, at: null, doubled: '6' },
        { id: '4', label: 'none', flag: null, data: 'true', tags: null, nums: null, bin: null, big: null, price: null, at: null, doubled: '8' },
      ]);
    expect((await repo.insertAll('things', entries)).count).toBe(4);
    await check();
    // The same rows through COPY (200+ rows of one key set) must be written identically.
    await client.query('TRUNCATE things');
    const many = Array.from({ length: 1200 }, (_, i) => ({ ...entries[0], id: 100 + i }));
    expect((await repo.insertAll('things', many)).count).toBe(1200);
    await client.query('DELETE FROM things WHERE id > 100; UPDATE things SET id = 1 WHERE id = 100');
    await repo.insertAll('things', entries.slice(1));
    await check();
  });

  it('quotes odd table and column names, and finds schema-qualified tables', async () => {
    await repo.insertAll('odd "name"', [{ 'a b': 'x', 'c"d': 1 }]);
    await repo.insertAll(`${schema}.odd "name"`, [{ 'a b': 'y', 'c"d': 2 }]);
    expect(await rows('SELECT * FROM "odd ""name""" ORDER BY 2')).toEqual([{ 'a b': 'x', 'c"d': '1' }, { 'a b': 'y', 'c"d': '2' }]);
  });

  it("onConflict 'nothing' skips conflicting rows and does not count them", async () => {
    await repo.insertAll('customers', [{ id: 'cus_1', name: 'Original', ...ts }]);
    expect((await repo.insertAll('customers', customers(3), { onConflict: 'nothing' })).count).toBe(2);
    expect(await rows('SELECT id, name FROM customers ORDER BY id')).toEqual([
      { id: 'cus_0', name: 'Customer 0' },
      { id: 'cus_1', name: 'Original' },
      { id: 'cus_2', name: 'Customer 2' },
    ]);
    expect((await repo.insertAll('customers', customers(4), { onConflict: 'nothing', conflictTarget: ['id'] })).count).toBe(1);
  });

  it("onConflict 'replace_all_except_primary_key' updates every given column but the key", async () => {
    await repo.insertAll('customers', [{ id: 'cus_1', name: 'Placeholder', email: null, ...timestamps(new Date(0)) }]);
    const result = await repo.insertAll('customers', customers(2), { onConflict: 'replace_all_except_primary_key', conflictTarget: ['id'] });
    expect(result.count).toBe(2);
    expect(await rows('SELECT id, name, email, updated_at FROM customers ORDER BY id')).toEqual([
      { id: 'cus_0', name: 'Customer 0', email: 'c0@x.test', updated_at: '2024-05-06 07:08:09.01' },
      { id: 'cus_1', name: 'Customer 1', email: 'c1@x.test', updated_at: '2024-05-06 07:08:09.01' },
    ]);
    await repo.insertAll('customers', [{ id: 'cus_0', name: 'Renamed' }], { onConflict: 'replace_all_except_primary_key' });
    expect(await rows("SELECT name, email FROM customers WHERE id = 'cus_0'")).toEqual([{ name: 'Renamed', email: 'c0@x.test' }]);
  });

  it('onConflict { replace } updates only the listed columns', async () => {
    await repo.insertAll('customers', [{ id: 'cus_0', name: 'Old', email: 'old@x.test', ...ts }]);
    const result = await repo.insertAll('customers', [{ id: 'cus_0', name: 'New', email: 'new@x.test', ...ts }], {
      onConflict: { replace: ['email'] },
      conflictTarget: ['id'],
    });
    expect(result.count).toBe(1);
    expect(await rows('SELECT name, email FROM customers')).toEqual([{ name: 'Old', email: 'new@x.test' }]);
  });

  it('returns the requested columns, skipping rows that conflicted', async () => {
    const first = await repo.insertAll('things', [{ id: 1, label: 'a' }, { id: 2 }], { returning: ['id', 'label', 'doubled'] });
    expect(first).toEqual({ count: 2, rows: [{ id: '1', label: 'a', doubled: '2' }, { id: '2', label: 'none', doubled: '4' }] });
    const second = await repo.insertAll('things', [{ id: 2 }, { id: 3, flag: true }], { onConflict: 'nothing', returning: true });
    expect(second.count).toBe(1);
    expect(second.rows).toEqual([
      { id: '3', label: 'none', flag: 't', data: null, tags: null, nums: null, bin: null, big: null, price: null, at: null, doubled: '6' },
    ]);
    const upsert = await repo.insertAll('things', [{ id: 3, label: 'c' }], { onConflict: 'replace_all_except_primary_key', returning: ['id', 'label'] });
    expect(upsert).toEqual({ count: 1, rows: [{ id: '3', label: 'c' }] });
  });

  it('fails with the database message on a foreign-key violation (unnest and COPY), writing nothing', async () => {
    await repo.insertAll('customers', customers(1));
    for (const n of [10, 3000]) {
      const orders = Array.from({ length: n }, (_, i) => ({ id: `ord_${i}`, customer_id: i === n - 2 ? 'cus_035751878' : 'cus_0', amount: i, ...ts }));
      const error = await repo.insertAll('orders', orders).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: '23503', constraint: 'orders_customer_id_fkey' });
      expect((error as Error).message).toBe('insert or update on table "orders" violates foreign key constraint "orders_customer_id_fkey"');
      expect(await rows('SELECT count(*)::int AS n FROM orders')).toEqual([{ n: '0' }]);
    }
    // The connection is still usable after a failed COPY.
    expect(await repo.insertAll('customers', customers(1, 1))).toEqual({ count: 1 });
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
    expect(await rows('SELECT count(*)::int AS n FROM customers')).toEqual([{ n: '0' }]);
    await expect(repo.insertAll('things', [{ id: 1, doubled: 5 }])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_COLUMN' });
    await expect(repo.insertAll('customers', customers(1), { onConflict: 'nothing', conflictTarget: ['nope'] })).rejects.toThrow(
      /unknown column "nope" in option conflictTarget/,
    );
  });

  it('rejects an unknown table and bad options', async () => {
    const error = await repo.insertAll('no_such_table', [{ id: 1 }]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_TABLE', details: { table: 'no_such_table' } });
    await expect(repo.insertAll('Customers', [{ id: 1 }])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_TABLE' });
    await expect(repo.insertAll('public.customers', [{ id: 1 }])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_TABLE' });
    await expect(repo.insertAll('customers', customers(1), { onConflict: 'upsert' } as never)).rejects.toMatchObject({
      code: 'ERR_THROUGHWAY_INVALID_OPTION',
      details: { option: 'onConflict' },
    });
    await expect(repo.insertAll('customers', customers(1), { returning: [] })).rejects.toMatchObject({ details: { option: 'returning' } });
  });

  it('writes 40,000 rows x 5 columns (beyond 65535 parameters) by COPY and by unnest upsert', async () => {
    await repo.insertAll('customers', customers(10));
    const n = 40_000;
    const orders = Array.from({ length: n }, (_, i) => ({ id: `ord_${i}`, customer_id: `cus_${i % 10}`, amount: i, ...ts }));
    expect((await repo.insertAll('orders', orders)).count).toBe(n);
    expect(await rows('SELECT count(*)::int AS n, sum(amount)::bigint AS s, min(inserted_at) AS t FROM orders')).toEqual([
      { n: String(n), s: String((n * (n - 1)) / 2), t: '2024-05-06 07:08:09.01' },
    ]);
    const upsert = await repo.insertAll('orders', orders.map((o) => ({ ...o, amount: 1 })), { onConflict: 'replace_all_except_primary_key' });
    expect(upsert.count).toBe(n);
    expect(await rows('SELECT sum(amount)::int AS s FROM orders')).toEqual([{ s: String(n) }]);
    const returning = await repo.insertAll('orders', orders.slice(0, 100).map((o) => ({ ...o, id: `new_${o.id}` })), { returning: ['id'] });
    expect(returning.rows?.slice(0, 2)).toEqual([{ id: 'new_ord_0' }, { id: 'new_ord_1' }]);
  });

  describe('a column holding one value in every row', () => {
    let own: pg.Client;
    beforeEach(async () => {
      // A connection of its own, so that pg_prepared_statements lists this test's statements only.
      own = new pg.Client({ ...connection, options: `-c search_path=${schema}` });
      await own.connect();
    });
    afterEach(() => own.end());
    /** The unnest arguments of each prepared insert into `table`, in the order prepared, e.g. [['$6::integer[]']]. */
    const unnested = async (table: string) =>
      (await own.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY prepare_time')).rows
        .filter((r) => r.statement.startsWith(`INSERT INTO ${table} `))
        .map((r) => /FROM unnest\((.*?)\) AS u/.exec(r.statement)![1]!.split(', '));

    it('goes as one parameter from 16 rows on, written exactly as the arrays would write it', async () => {
      const repoOwn = postgresRepo(own);
      const tricky = 'tab\there, "quotes", back\\slash, {braces}, new\nline';
      const shared = { label: tricky.slice(0, 8), flag: true, data: { x: [1, 'two'], s: tricky }, tags: ['a', tricky, null], nums: [[1, 2], [3, 4]], bin: Buffer.from([0, 255]), big: 2n ** 62n, price: '0.10', at: new Date(0) };
      const entries = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: from + i, ...shared }));
      expect((await repoOwn.insertAll('things', entries(1, 40))).count).toBe(40);
      // 15 rows: below the threshold, every column an array.
      expect((await repoOwn.insertAll('things', entries(41, 15))).count).toBe(15);
      const stored = await rows("SELECT id, label, flag, data::text, tags::text, nums::text, bin::text, big, price, at AT TIME ZONE 'UTC' AS at FROM things ORDER BY id");
      expect(stored.map((r) => r.id)).toEqual(Array.from({ length: 55 }, (_, i) => String(i + 1)));
      const expected = { label: 'tab\there', flag: 't', data: `{"s": ${JSON.stringify(tricky)}, "x": [1, "two"]}`, tags: `{a,"tab\there, \\"quotes\\", back\\\\slash, {braces}, new\nline",NULL}`, nums: '{{1,2},{3,4}}', bin: '\\x00ff', big: '4611686018427387904', price: '0.10', at: '1970-01-01 00:00:00' };
      for (const row of stored) expect(row).toEqual({ id: row.id, ...expected });
      // First call: only the id varies, so only it is unnested; second: all ten columns.
      const statements = await unnested(`${S}."things"`);
      expect(statements).toHaveLength(2);
      expect(statements[0]).toEqual([expect.stringMatching(/^\$\d+::integer\[\]$/)]);
      expect(statements[1]).toHaveLength(10);
    });

    it('passes a constant null and a shared Date through upserts; keeps arrays when every column is constant', async () => {
      const repoOwn = postgresRepo(own);
      const entries = Array.from({ length: 20 }, (_, i) => ({ id: `cus_${i}`, name: null, email: 'same@x.test', ...ts }));
      expect((await repoOwn.insertAll('customers', entries)).count).toBe(20);
      const renamed = entries.map((e, i) => ({ ...e, name: i % 2 ? 'odd' : 'even', email: null }));
      expect((await repoOwn.insertAll('customers', renamed, { onConflict: 'replace_all_except_primary_key' })).count).toBe(20);
      expect(await rows('SELECT name, email, inserted_at, count(*)::int AS n FROM customers GROUP BY 1, 2, 3 ORDER BY 1')).toEqual([
        { name: 'even', email: null, inserted_at: '2024-05-06 07:08:09.01', n: '10' },
        { name: 'odd', email: null, inserted_at: '2024-05-06 07:08:09.01', n: '10' },
      ]);
      // Unnested: the id in the first call, the id and the name in the second.
      expect((await unnested(`${S}."customers"`)).map((args) => args.length)).toEqual([1, 2]);
      // Every row the same: unnest needs an array to count them, so all stay arrays.
      expect((await repoOwn.insertAll('odd "name"', Array.from({ length: 20 }, () => ({ 'a b': 'x', 'c"d': 1 })))).count).toBe(20);
      expect(await rows('SELECT "a b", "c""d", count(*)::int AS n FROM "odd ""name""" GROUP BY 1, 2')).toEqual([{ 'a b': 'x', 'c"d': '1', n: '20' }]);
      expect((await unnested(`${S}."odd ""name"""`)).map((args) => args.length)).toEqual([2]);
    });

    it('keeps the statement shapes per table bounded, writing every row', async () => {
      await client.query('CREATE TABLE wide (c0 int, c1 int, c2 int, c3 int, c4 int, c5 int, c6 int)');
      const repoOwn = postgresRepo(own);
      let sum = 0;
      // 100 distinct sets of constant columns (masks 1..100 in 7 bits: never none, never all).
      for (let mask = 1; mask <= 100; mask++) {
        const entries = Array.from({ length: 16 }, (_, i) => {
          const e: Record<string, number> = {};
          for (let c = 0; c < 7; c++) e[`c${c}`] = mask & (1 << c) ? mask : i;
          return e;
        });
        for (const e of entries) for (const v of Object.values(e)) sum += v;
        expect((await repoOwn.insertAll('wide', entries)).count).toBe(16);
      }
      expect(await rows('SELECT count(*)::int AS n, sum(c0 + c1 + c2 + c3 + c4 + c5 + c6)::int AS s FROM wide')).toEqual([{ n: '1600', s: String(sum) }]);
      // 64 shapes with constants, then every later set uses the one all-array statement.
      const shapes = await unnested(`${S}."wide"`);
      expect(shapes).toHaveLength(65);
      expect(shapes.filter((args) => args.length === 7)).toHaveLength(1);
    });
  });

  it('works through a Pool, checking clients out and back in', async () => {
    const pooled = postgresRepo(pool);
    const results = await Promise.all([0, 1, 2, 3].map((k) => pooled.insertAll('customers', customers(5, k * 5))));
    expect(results.map((r) => r.count)).toEqual([5, 5, 5, 5]);
    expect(await rows('SELECT count(*)::int AS n FROM customers')).toEqual([{ n: '20' }]);
    expect(pool.idleCount).toBe(pool.totalCount);
  });
});

describe('postgresRepo.transaction', () => {
  for (const kind of ['Client', 'Pool'] as const) {
    it(`commits placeholder customers and orders together (${kind})`, async () => {
      const r = kind === 'Client' ? repo : postgresRepo(pool);
      await r.transaction(async (tx) => {
        await tx.insertAll('customers', [{ id: 'cus_9' }], { onConflict: 'nothing' });
        expectCount(await tx.insertAll('orders', [{ id: 'ord_1', customer_id: 'cus_9', amount: 4857, ...ts }]), 1);
      });
      expect(await rows('SELECT id, customer_id, amount FROM orders')).toEqual([{ id: 'ord_1', customer_id: 'cus_9', amount: '4857' }]);
    });

    it(`rolls everything back when a later insert fails (${kind})`, async () => {
      const r = kind === 'Client' ? repo : postgresRepo(pool);
      const failing = r.transaction(async (tx) => {
        await tx.insertAll('customers', customers(5));
        await tx.insertAll('orders', [{ id: 'ord_1', customer_id: 'cus_missing', amount: 1, ...ts }]);
      });
      await expect(failing).rejects.toMatchObject({ code: '23503' });
      expect(await rows('SELECT count(*)::int AS n FROM customers')).toEqual([{ n: '0' }]);
      expect(client.getTransactionStatus?.() ?? 'I').toBe('I');
    });
  }

  it('fails and rolls back with expectCount when rows were skipped', async () => {
    await repo.insertAll('customers', customers(1));
    const entries = customers(3);
    const error = await repo
      .transaction(async (tx) => expectCount(await tx.insertAll('customers', entries, { onConflict: 'nothing' }), entries))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_THROUGHWAY_COUNT_MISMATCH', details: { expected: 3, actual: 2 } });
    expect(await rows('SELECT id FROM customers')).toEqual([{ id: 'cus_0' }]);
  });

  it('nests with savepoints, and joins a transaction the caller began', async () => {
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
    expect(await rows('SELECT id FROM customers ORDER BY id')).toEqual([{ id: 'cus_0' }, { id: 'cus_2' }]);

    // A multi-statement insertAll (two key sets) inside the caller's own BEGIN must not COMMIT it.
    await client.query('BEGIN');
    await repo.insertAll('customers', [{ id: 'cus_7' }, { id: 'cus_8', name: 'Eight' }]);
    await client.query('ROLLBACK');
    expect(await rows("SELECT id FROM customers WHERE id IN ('cus_7', 'cus_8')")).toEqual([]);
  });
});
