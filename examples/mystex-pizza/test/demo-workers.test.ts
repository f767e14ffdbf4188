// `--source postgres` (queue in the same database, exactly-once) and `--workers N` (N processes on
// one queue), end to end through the built CLI: the consistency check holds, and the tables equal
// those of a one-process run on the SQLite queue with the same seed.
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../src/summary.js';
import { PG_BASE, dropSchema, pgUrl, runCli, tempDir, uniqueSchema, type CliRun } from './helpers.js';

const { dir, cleanup } = tempDir('mystex-workers-');
const schemas: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await dropSchema(schema);
  cleanup();
});

function summaryOf(run: CliRun): RunSummary {
  const line = run.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as RunSummary;
  } catch {
    throw new Error(`no JSON summary (exit ${run.code})\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

async function snapshot(schema: string): Promise<{ customers: string[]; orders: string[] }> {
  const client = new pg.Client({ connectionString: PG_BASE });
  await client.connect();
  try {
    const customers = (await client.query({ text: `SELECT id, name, email, placeholder FROM "${schema}".customers`, rowMode: 'array' })).rows.map((r) => JSON.stringify(r));
    const orders = (await client.query({ text: `SELECT id, customer_id, amount FROM "${schema}".orders`, rowMode: 'array' })).rows.map((r) => JSON.stringify(r));
    return { customers: customers.sort(), orders: orders.sort() };
  } finally {
    await client.end();
  }
}

const EVENTS = '8000';

describe('the demo scaled out', () => {
  it('--source postgres --workers 2: the check passes and the tables equal a one-process SQLite-queue run of the same seed', async () => {
    const eo = uniqueSchema('eo');
    const plain = uniqueSchema('plain');
    schemas.push(eo, plain);
    const scaled = await runCli(['--events', EVENTS, '--source', 'postgres', '--workers', '2', '--database', pgUrl(eo), '--json', '--keep', '--log-level', 'warn']);
    const s = summaryOf(scaled);
    expect(scaled.code, scaled.stderr).toBe(0);
    expect(s.check?.ok).toBe(true);
    expect(s.processed).toBe(8000);
    expect(s.queueState?.remaining).toBe(0);
    const reference = await runCli(['--events', EVENTS, '--database', pgUrl(plain), '--queue', path.join(dir, 'plain-queue.db'), '--json', '--keep', '--log-level', 'warn']);
    expect(reference.code, reference.stderr).toBe(0);
    expect(await snapshot(eo)).toEqual(await snapshot(plain));
    // Every event left the queue: acked in a transaction with its rows, or dead-lettered.
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT (SELECT count(*) FROM "${eo}".pizzabarn_events)::int AS left, (SELECT count(*) FROM "${eo}".pizzabarn_events_dead)::int AS dead`);
      expect(rows[0]).toEqual({ left: 0, dead: s.failed });
    } finally {
      await client.end();
    }
  });

  it('--workers 2 on the SQLite queue: the check passes', async () => {
    const run = await runCli(['--events', EVENTS, '--workers', '2', '--database', path.join(dir, 'w2.db'), '--json', '--log-level', 'warn']);
    expect(run.code, run.stderr).toBe(0);
    const s = summaryOf(run);
    expect(s.check?.ok).toBe(true);
    expect(s.processed).toBe(8000);
  });

  it('--source postgres without a Postgres --database is a usage error', async () => {
    const run = await runCli(['--source', 'postgres', '--database', path.join(dir, 'x.db')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--source postgres needs --database to be a Postgres URL');
  });
});
