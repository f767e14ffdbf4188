// The demo's clean-up after a passing run never takes anything that is not its own.
import { existsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqlite, parseDatabase } from '../src/database.js';
import { prepareTarget, removeTarget } from '../src/schema.js';
import { PG_BASE, dropSchema, pgUrl, tempDir, uniqueSchema } from './helpers.js';

const { dir, cleanup } = tempDir('mystex-schema-');
afterAll(cleanup);

describe('removeTarget', () => {
  it('deletes a SQLite file that holds only the demo tables, and only those tables otherwise', async () => {
    const own = parseDatabase(path.join(dir, 'own.db'));
    await prepareTarget(own);
    await removeTarget(own);
    expect(existsSync(path.join(dir, 'own.db'))).toBe(false);

    const shared = parseDatabase(path.join(dir, 'shared.db'));
    const db = openSqlite(path.join(dir, 'shared.db'));
    db.exec('CREATE TABLE precious (id INTEGER PRIMARY KEY)');
    db.close();
    await prepareTarget(shared);
    await removeTarget(shared);
    const after = openSqlite(path.join(dir, 'shared.db'));
    expect(after.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all()).toEqual(['precious']);
    after.close();
  });

  it('drops the demo tables on Postgres, and the schema only when nothing else lives there', async () => {
    const schema = uniqueSchema('clean');
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    try {
      const target = parseDatabase(pgUrl(schema));
      await prepareTarget(target);
      await client.query(`CREATE TABLE "${schema}".precious (id int)`);
      await removeTarget(target);
      const tables = await client.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
      expect(tables.rows.map((r) => r.table_name)).toEqual(['precious']);
      await client.query(`DROP TABLE "${schema}".precious`);
      await prepareTarget(target);
      await removeTarget(target);
      const schemas = await client.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema]);
      expect(schemas.rowCount).toBe(0);
    } finally {
      await client.end();
      await dropSchema(schema);
    }
  });
});
