// Shared by the postgres-producer tests: the machine's real Postgres, a unique table per test,
// a stand-in controller for driving producers by hand, and child processes.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll } from 'vitest';
import type { ThroughwayMessage } from '@throughway/core';
import { queueAcknowledger } from '@throughway/postgres-producer';
import { childRunner } from '../../../test-support/child.js';

const host = process.env.PGHOST ?? '/var/run/postgresql';
const database = process.env.PGDATABASE ?? 'test';
const user = process.env.PGUSER ?? 'postgres';
/** A connection string for the machine's Postgres (unix socket, trust auth). */
export const PG_URL = `postgresql://${encodeURIComponent(user)}@/${database}?host=${encodeURIComponent(host)}&port=${process.env.PGPORT ?? 5432}`;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(20);
  }
}

const pools: pg.Pool[] = [];
const tables: string[] = [];

/** The test's own pool (ended after the file). */
export function testPool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  pool.on('error', () => undefined);
  pools.push(pool);
  return pool;
}

/** A table name no other test run uses; its queue objects are dropped after the file. */
export function uniqueTable(prefix = 'twq'): string {
  const name = `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
  tables.push(name);
  return name;
}

afterAll(async () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  try {
    for (const t of tables) {
      await pool.query(`DROP TABLE IF EXISTS "${t}", "${t}_dead", "${t}_sink", "${t}_claims" CASCADE`);
      await pool.query(`DROP FUNCTION IF EXISTS "${t}_notify"() CASCADE`);
      await pool.query(`DELETE FROM throughway_checkpoints WHERE name LIKE $1`, [`${t}%`]).catch(() => undefined);
      await pool.query(`DELETE FROM throughway_cursor_failures WHERE checkpoint_name LIKE $1`, [`${t}%`]).catch(() => undefined);
    }
  } finally {
    await pool.end();
    for (const p of pools) await p.end().catch(() => undefined);
  }
});

/** A controller that collects what a producer pushes. */
export function controller(): { push(events: unknown[]): void; pushed: ThroughwayMessage[]; pipelineName: string; index: number; hasTransformer: boolean } {
  const pushed: ThroughwayMessage[] = [];
  return {
    pushed,
    push(events: unknown[]) {
      pushed.push(...(events as ThroughwayMessage[]));
    },
    pipelineName: 'test',
    index: 0,
    hasTransformer: false,
  };
}

/** Marks a main-thread message failed the way the pipeline does. */
export function fail<M extends ThroughwayMessage>(m: M, reason: unknown): M {
  m.status = { kind: 'failed', reason };
  return m;
}

/** Acks queue messages the way the pipeline does (one call for their shared ref). */
export function ack(successful: ThroughwayMessage[], failed: ThroughwayMessage[] = []): Promise<void> {
  const ref = (successful[0] ?? failed[0])!.acknowledger!.ref;
  return queueAcknowledger.ack(ref, successful, failed) as Promise<void>;
}

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export type { Child } from '../../../test-support/child.js';

/** Runs a fixture script with a JSON argument; stdout and stderr are kept for failure messages. */
export const runChild = childRunner(FIXTURES);
