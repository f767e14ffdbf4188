/**
 * The two tables of the seed (customers, orders), for SQLite and Postgres, with the foreign key
 * that made the seed's pipeline fail (orders.customer_id → customers.id) enforced in both.
 *
 * `placeholder` marks a customer row created from an order before its own `customer.created`
 * arrived: it makes "placeholders still waiting for their real data" a simple count, and a CHECK
 * keeps every non-placeholder row complete.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { connectPostgres, openSqlite, type DatabaseTarget } from './database.js';

export const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS customers (
  id          TEXT PRIMARY KEY,
  name        TEXT,
  email       TEXT,
  placeholder INTEGER NOT NULL DEFAULT 0 CHECK (placeholder IN (0, 1)),
  inserted_at TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  CHECK (placeholder = 1 OR (name IS NOT NULL AND email IS NOT NULL))
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
  id          TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers (id),
  amount      INTEGER NOT NULL CHECK (amount >= 0),
  inserted_at TEXT NOT NULL,
  updated_at  TEXT NOT NULL
) WITHOUT ROWID;
`;

/**
 * `WITHOUT ROWID`: the text primary key is the table's only b-tree, one write per row instead of two.
 *
 * No index on orders.customer_id: the foreign key is checked against customers' primary key when
 * an order is inserted, and only deleting a customer or changing its id (never done here) would
 * need the child index. Measured on this machine it cost a third of the orders' insert time
 * (random inserts into a second b-tree). Add it if you query orders by customer.
 */
export function migrateSqlite(db: Database.Database): void {
  db.exec(SQLITE_SCHEMA);
}

export function postgresSchema(schema: string): string {
  const s = `"${schema}"`;
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.customers (
  id          text PRIMARY KEY,
  name        text,
  email       text,
  placeholder boolean NOT NULL DEFAULT false,
  inserted_at timestamp NOT NULL,
  updated_at  timestamp NOT NULL,
  CHECK (placeholder OR (name IS NOT NULL AND email IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS ${s}.orders (
  id          text PRIMARY KEY,
  customer_id text NOT NULL REFERENCES ${s}.customers (id),
  amount      integer NOT NULL CHECK (amount >= 0),
  inserted_at timestamp NOT NULL,
  updated_at  timestamp NOT NULL
);
`;
}

export async function migratePostgres(client: pg.ClientBase, schema: string): Promise<void> {
  // Two demo processes starting at once could race on CREATE ... IF NOT EXISTS: serialize them.
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [`mystex:${schema}`]);
  try {
    await client.query(postgresSchema(schema));
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`mystex:${schema}`]);
  }
}

/**
 * Drops the demo's tables, then the schema only if nothing else lives in it: `--database` may name
 * a schema that holds someone's other tables, which must survive the demo's clean-up.
 */
export async function dropPostgres(client: pg.ClientBase, schema: string): Promise<void> {
  await client.query(`DROP TABLE IF EXISTS "${schema}".orders, "${schema}".customers`);
  await client.query(`DROP SCHEMA IF EXISTS "${schema}"`).catch(() => undefined);
}

/** Creates the tables where the demo writes (the file's directory too, for SQLite). */
export async function prepareTarget(target: DatabaseTarget): Promise<void> {
  if (target.kind === 'sqlite') {
    mkdirSync(path.dirname(target.path), { recursive: true });
    const db = openSqlite(target.path);
    try {
      migrateSqlite(db);
    } finally {
      db.close();
    }
    return;
  }
  const client = await connectPostgres(target);
  try {
    await migratePostgres(client, target.schema);
  } finally {
    await client.end();
  }
}

/**
 * Deletes what the demo wrote: the SQLite file (with its WAL) when it holds nothing but the demo's
 * tables, else just those tables; on Postgres the tables, and the schema if it is left empty.
 */
export async function removeTarget(target: DatabaseTarget): Promise<void> {
  if (target.kind === 'sqlite') {
    const db = openSqlite(target.path);
    let others: number;
    try {
      others = db.prepare(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT IN ('customers', 'orders') AND name NOT LIKE 'sqlite_%'`).pluck().get() as number;
      if (others > 0) db.exec('DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS customers;');
    } finally {
      db.close();
    }
    if (others === 0) removeSqliteFile(target.path);
    return;
  }
  const client = await connectPostgres(target);
  try {
    await dropPostgres(client, target.schema);
  } finally {
    await client.end();
  }
}

export function removeSqliteFile(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(file + suffix, { force: true });
}
