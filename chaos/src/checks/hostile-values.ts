/**
 * Hostile values for insertAll on SQLite and Postgres: each must be refused with a coded
 * ThroughwayError (naming the column where there is one) and write nothing.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { postgresRepo, sqliteRepo, type Repo } from '@throughway/workers';
import { PG_BASE, tempPlace, type Check, type CheckContext, type CheckResult } from '../util.js';

interface HostileCase {
  label: string;
  table: string;
  entries: () => Record<string, unknown>[];
  /** Only on this dialect. */
  only?: 'sqlite' | 'postgres';
}

function cases(context: CheckContext): HostileCase[] {
  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  const bigOut = 2n ** 63n + BigInt(context.random.int(0, 1_000_000));
  const inherited = () => Object.assign(Object.create({ note: 'inherited', other: 1 }), { id: 2, other: 'x' });
  return [
    { label: 'NaN', table: 'h', entries: () => [{ id: 1, n: Number.NaN }] },
    { label: 'Infinity', table: 'h', entries: () => [{ id: 1, n: Infinity }] },
    { label: '-Infinity in the 2nd entry', table: 'h', entries: () => [{ id: 1, n: 1 }, { id: 2, n: -Infinity }] },
    { label: `BigInt ${bigOut}`, table: 'h', entries: () => [{ id: 1, big: bigOut }] },
    { label: 'BigInt -2^63-1', table: 'h', entries: () => [{ id: 1, big: -(2n ** 63n) - 1n }] },
    { label: 'BigInt inside an object', table: 'h', entries: () => [{ id: 1, data: { x: 1n } }] },
    { label: 'a circular object', table: 'h', entries: () => [{ id: 1, data: circular }] },
    { label: 'a Map', table: 'h', entries: () => [{ id: 1, data: new Map([['k', 1]]) }] },
    { label: 'a Set', table: 'h', entries: () => [{ id: 1, data: new Set([1]) }] },
    { label: 'toJSON returning undefined', table: 'h', entries: () => [{ id: 1, data: { toJSON: () => undefined } }] },
    { label: 'a function', table: 'h', entries: () => [{ id: 1, note: () => 1 }] },
    { label: 'a symbol', table: 'h', entries: () => [{ id: 1, note: Symbol('s') }] },
    { label: 'an invalid Date', table: 'h', entries: () => [{ id: 1, note: new Date(Number.NaN) }] },
    { label: 'an unknown key where the table has a constructor column', table: 'h', entries: () => [{ id: 1, constructor: 'c' }, { id: 2, other: 'x' }] },
    { label: 'an unknown own key on an object with an inherited one', table: 'h', entries: () => [inherited()] },
    { label: 'an own __proto__ key the table lacks', table: 'h', entries: () => [JSON.parse('{"id": 1, "__proto__": "p"}')] },
    { label: 'a NUL in the table name', table: 'h\0x', entries: () => [{ id: 1 }] },
    { label: 'bytes into a text column', table: 'h', entries: () => [{ id: 1, note: Buffer.from('hi') }], only: 'postgres' },
    { label: 'bytes into a jsonb column', table: 'h', entries: () => [{ id: 1, data: Buffer.from('hi') }], only: 'postgres' },
  ];
}

export function hostileValues(): Check {
  return {
    name: 'hostile-values',
    async run(context: CheckContext): Promise<CheckResult> {
      const tmp = tempPlace('hostile');
      const schema = `chaos_hostile_${process.pid}_${randomBytes(3).toString('hex')}`;
      const sqlite = new Database(tmp.path('h.db'));
      const client = new pg.Client({ connectionString: PG_BASE });
      const failures: string[] = [];
      let total = 0;
      let refused = 0;
      try {
        sqlite.exec(`CREATE TABLE h (id INTEGER PRIMARY KEY, n REAL, note TEXT, data TEXT, big INTEGER, "constructor" TEXT)`);
        await client.connect();
        await client.query(`CREATE SCHEMA "${schema}"; SET search_path TO "${schema}"; CREATE TABLE h (id integer PRIMARY KEY, n double precision, note text, data jsonb, big bigint, "constructor" text)`);
        const repos: ['sqlite' | 'postgres', Repo, () => Promise<number>][] = [
          ['sqlite', sqliteRepo(sqlite), async () => sqlite.prepare('SELECT count(*) FROM h').pluck().get() as number],
          ['postgres', postgresRepo(client), async () => Number((await client.query('SELECT count(*) AS n FROM h')).rows[0].n)],
        ];
        for (const c of cases(context)) {
          for (const [dialect, repo, count] of repos) {
            if (c.only && c.only !== dialect) continue;
            total++;
            let error: { code?: unknown; message?: unknown } | undefined;
            try {
              await repo.insertAll(c.table, c.entries() as never);
            } catch (e) {
              error = e as { code?: unknown; message?: unknown };
            }
            const written = await count();
            const coded = typeof error?.code === 'string' && error.code.startsWith('ERR_THROUGHWAY_');
            if (coded && written === 0) refused++;
            else failures.push(`${dialect}: ${c.label}: ${error ? `${String(error.code ?? 'no code')}: ${String(error.message).slice(0, 100)}` : 'written'}${written > 0 ? ` (${written} rows written)` : ''}`);
            sqlite.exec('DELETE FROM h');
            await client.query('DELETE FROM h');
          }
        }
      } finally {
        sqlite.close();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
        await client.end().catch(() => undefined);
        tmp.cleanup();
      }
      const note = `${total} cases on SQLite and Postgres` + (failures.length > 0 ? `; not refused: ${failures.join('; ')}` : '');
      return { name: this.name, ok: failures.length === 0, counts: { cases: total, refused }, note };
    },
  };
}
