// insertAll with values it must not write silently, on a real SQLite file and the local
// PostgreSQL (a schema unique to this run): each is refused with a coded error naming the column,
// or written as documented.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresRepo, sqliteRepo, type Repo } from '@throughway/workers';

const connection = {
  host: process.env.PGHOST ?? '/var/run/postgresql',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};
const schema = `tw_hostile_${process.pid}_${randomBytes(4).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'throughway-hostile-'));
let sqlite: Database.Database;
let client: pg.Client;

interface Dialect {
  name: 'sqlite' | 'postgres';
  repo: () => Repo;
  /** Rows of table h, ordered by id: `select` is the column list. */
  rows: (select?: string) => Promise<Record<string, unknown>[]>;
}

beforeAll(async () => {
  sqlite = new Database(join(dir, 'h.db'));
  sqlite.exec(`CREATE TABLE h (id INTEGER PRIMARY KEY, n REAL, i INTEGER, note TEXT, data TEXT, bin BLOB, big INTEGER, "constructor" TEXT, "__proto__" TEXT)`);
  client = new pg.Client(connection);
  await client.connect();
  await client.query(`CREATE SCHEMA "${schema}"`);
  await client.query(`SET search_path TO "${schema}"`);
  await client.query(`CREATE TABLE h (id integer PRIMARY KEY, n double precision, i integer, note text, data jsonb, bin bytea, big bigint, "constructor" text, "__proto__" text)`);
});

afterAll(async () => {
  sqlite.close();
  rmSync(dir, { recursive: true, force: true });
  await client.query(`DROP SCHEMA "${schema}" CASCADE`);
  await client.end();
});

const dialects: Dialect[] = [
  {
    name: 'sqlite',
    repo: () => sqliteRepo(sqlite),
    rows: async (select = '*') => sqlite.prepare(`SELECT ${select} FROM h ORDER BY id`).all() as Record<string, unknown>[],
  },
  {
    name: 'postgres',
    repo: () => postgresRepo(client),
    rows: async (select = '*') => (await client.query(`SELECT ${select} FROM h ORDER BY id`)).rows,
  },
];

async function clear(): Promise<void> {
  sqlite.exec('DELETE FROM h');
  await client.query('DELETE FROM h');
}

async function refused(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('insertAll did not reject');
}

describe.each(dialects)('insertAll refuses values it would write wrongly [$name]', ({ name, repo, rows }) => {
  it('NaN and ±Infinity: ERR_THROUGHWAY_INVALID_VALUE naming the column, nothing written', async () => {
    await clear();
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const error = await refused(repo().insertAll('h', [{ id: 1, n: 1.5 }, { id: 2, n: bad }]));
      expect(error).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_VALUE', details: { table: 'h', column: 'n' } });
      expect(error.message).toContain('column "n"');
      expect(error.message).toContain('not a finite number');
    }
    expect(await rows()).toEqual([]);
  });

  it('allowNonFinite lets them into a column that holds them, and only there', async () => {
    await clear();
    await repo().insertAll('h', [{ id: 1, n: Infinity }, { id: 2, n: -Infinity }], { allowNonFinite: true });
    const stored = (await rows()).map((r) => Number(r.n));
    expect(stored).toEqual([Infinity, -Infinity]);
    // SQLite has no NaN (it would store NULL); a Postgres integer column has none either.
    const nan = await refused(repo().insertAll('h', [{ id: 3, [name === 'sqlite' ? 'n' : 'i']: Number.NaN }], { allowNonFinite: true }));
    expect(nan).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_VALUE', details: { column: name === 'sqlite' ? 'n' : 'i' } });
    if (name === 'postgres') {
      await repo().insertAll('h', [{ id: 3, n: Number.NaN }], { allowNonFinite: true });
      expect((await rows())[2]!.n).toBeNaN();
    }
    await expect(repo().insertAll('h', [{ id: 9, n: 1 }], { allowNonFinite: 'yes' } as never)).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION' });
  });

  it('only own enumerable keys are columns: `constructor` and `__proto__` columns, inherited properties', async () => {
    await clear();
    // The table has a `constructor` column; the second entry has an unknown key instead of it.
    const unknown = await refused(repo().insertAll('h', [{ id: 1, constructor: 'c' }, { id: 2, other: 'x' }]));
    expect(unknown).toMatchObject({ code: 'ERR_THROUGHWAY_UNKNOWN_COLUMN', details: { column: 'other' } });
    // An entry without the key does not write Object (Object.prototype.constructor) into it.
    const inherited = Object.assign(Object.create({ note: 'inherited', constructor: 'inherited' }), { id: 2, i: 7 });
    const own = JSON.parse('{"id": 3, "__proto__": "own value", "note": "n"}');
    await repo().insertAll('h', [{ id: 1, i: 1 }, inherited, own]);
    // Read back under other names: a row object with a `__proto__` key is itself ambiguous.
    const got = (await rows('id, note, "constructor" AS ctor, "__proto__" AS proto')).map((r) => ({ ...r, id: Number(r.id) }));
    expect(got).toEqual([
      { id: 1, note: null, ctor: null, proto: null },
      { id: 2, note: null, ctor: null, proto: null },
      { id: 3, note: 'n', ctor: null, proto: 'own value' },
    ]);
  });

  it('BigInt out of range, BigInt inside an object, circular objects, Map, toJSON returning undefined: coded errors naming the column', async () => {
    await clear();
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ id: 1, big: 2n ** 63n }, 'big', /outside the 64-bit integer range/],
      [{ id: 1, big: -(2n ** 63n) - 1n }, 'big', /outside the 64-bit integer range/],
      [{ id: 1, data: { x: 1n } }, 'data', /BigInt/],
      [{ id: 1, data: circular }, 'data', /circular/i],
      [{ id: 1, data: new Map([['a', 1]]) }, 'data', /Map has no JSON form/],
      [{ id: 1, data: { toJSON: () => undefined } }, 'data', /no JSON form/],
    ];
    for (const [entry, column, message] of cases) {
      const error = await refused(repo().insertAll('h', [entry]));
      expect(error, `${column}: ${message}`).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_VALUE', details: { column } });
      expect(error.message).toMatch(message);
    }
    // The edges of the range are written.
    await repo().insertAll('h', [{ id: 1, big: 2n ** 63n - 1n }, { id: 2, big: -(2n ** 63n) }]);
    expect((await rows('CAST(big AS TEXT) AS big')).map((r) => r.big)).toEqual([String(2n ** 63n - 1n), String(-(2n ** 63n))]);
  });

  it('a NUL in the table name is an invalid option, not a driver error', async () => {
    await expect(repo().insertAll('h\0; DROP TABLE h', [{ id: 1 }])).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', details: { option: 'table' } });
  });
});

describe('Postgres: bytes and json text', () => {
  it('bytes into a text or json column are refused; a string into jsonb is JSON text (documented)', async () => {
    await clear();
    const repo = postgresRepo(client);
    for (const column of ['note', 'data']) {
      const error = await refused(repo.insertAll('h', [{ id: 1, [column]: Buffer.from('hi') }]));
      expect(error).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_VALUE', details: { column } });
      expect(error.message).toContain('bytea');
    }
    await repo.insertAll('h', [{ id: 1, bin: Buffer.from('hi'), data: '42' }, { id: 2, data: JSON.stringify('42') }]);
    const got = (await client.query(`SELECT id, bin, jsonb_typeof(data) AS t FROM h ORDER BY id`)).rows;
    expect(got).toEqual([
      { id: 1, bin: Buffer.from('hi'), t: 'number' },
      { id: 2, bin: null, t: 'string' },
    ]);
  });
});
