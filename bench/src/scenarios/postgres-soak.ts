/**
 * Health of a Postgres queue under churn: a pipeline (no-op handler) drains a queue that a feeder
 * keeps topped up, for THROUGHWAY_SOAK_SECONDS (default 90 s, 20 s with --quick; the issue's
 * 10-minute soak is `THROUGHWAY_SOAK_SECONDS=600 pnpm bench --only postgres-soak --timeout 700`).
 * Every claim is an UPDATE and every ack a DELETE, so the table makes dead tuples as fast as it
 * moves rows; what must hold is that autovacuum (with the storage parameters `migrate` sets)
 * and the producer's own `VACUUM` every `vacuumEvery` rows keep the dead tuples and the table's
 * size bounded. Reports rows moved, the dead tuples and the
 * total size (table, indexes, TOAST) at the end and their peaks, and how often autovacuum ran.
 */
import pg from 'pg';
import { Pipeline } from '@throughway/core';
import { enqueue, migrate, postgresQueue } from '@throughway/postgres-producer';
import type { BenchResult, Scenario } from '../scenario.js';
import { log, sleep } from '../harness/measure.js';

const NAME = 'postgres-soak';
const SCENARIO = 'postgres queue soak';
const PG_BASE = process.env.PG_URL ?? 'postgres://postgres@/test?host=/var/run/postgresql';
const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);
/** The feeder keeps about this many rows waiting. */
const BACKLOG = 5000;

interface Sample {
  dead: number;
  live: number;
  bytes: number;
  autovacuums: number;
  vacuums: number;
}

async function sample(pool: pg.Pool, table: string): Promise<Sample> {
  const { rows } = await pool.query<{ dead: string; live: string; bytes: string; autovacuums: string; vacuums: string }>(
    `SELECT n_dead_tup AS dead, n_live_tup AS live, pg_total_relation_size(relid) AS bytes, autovacuum_count AS autovacuums, vacuum_count AS vacuums FROM pg_stat_user_tables WHERE relname = $1`,
    [table],
  );
  const r = rows[0]!;
  return { dead: Number(r.dead), live: Number(r.live), bytes: Number(r.bytes), autovacuums: Number(r.autovacuums), vacuums: Number(r.vacuums) };
}

const soak: Scenario = async ({ quick }) => {
  const seconds = Number(process.env.THROUGHWAY_SOAK_SECONDS ?? (quick ? 20 : 90));
  const pool = new pg.Pool({ connectionString: PG_BASE, max: 3 });
  pool.on('error', () => undefined);
  const table = `tw_bench_soak_${process.pid}`;
  try {
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      return [{ scenario: SCENARIO, case: 'not run', value: Number.NaN, unit: 'rows', note: `PostgreSQL not reachable at ${PG_BASE}: ${(error as Error).message}` }];
    }
    await migrate(pool, { table });
    const source = postgresQueue({ connection: PG_BASE, table, migrate: false, prefetch: 1000, metadata: false, pollInterval: 20 });
    const pipeline = await Pipeline.start({ name: 'bench-pg-soak', handlers, producer: { module: source }, processors: { default: { runtime: 'inline', maxDemand: 1000 } } });
    const started = performance.now();
    const end = started + seconds * 1000;
    let fed = 0;
    let peakDead = 0;
    let peakBytes = 0;
    let nextSample = started;
    let seq = 0;
    try {
      while (performance.now() < end) {
        if (fed - source.stats().acked < BACKLOG) {
          const batch = Array.from({ length: 1000 }, () => `{"n":${++seq},"pad":"${'x'.repeat(64)}"}`);
          await enqueue(pool, batch, { table });
          fed += batch.length;
        } else await sleep(5);
        if (performance.now() >= nextSample) {
          const s = await sample(pool, table);
          peakDead = Math.max(peakDead, s.dead);
          peakBytes = Math.max(peakBytes, s.bytes);
          log(NAME, `${Math.round((performance.now() - started) / 1000)} s: ${source.stats().acked.toLocaleString('en-US')} rows moved, dead tuples ${s.dead.toLocaleString('en-US')}, size ${(s.bytes / 1048576).toFixed(1)} MiB, vacuums ${s.vacuums} (producer) + ${s.autovacuums} (autovacuum)`);
          nextSample += 10_000;
        }
      }
      while (source.stats().acked < fed) await sleep(10);
    } finally {
      await pipeline.stop();
    }
    const elapsed = (performance.now() - started) / 1000;
    await sleep(1500); // let the statistics catch up with the last acks
    const last = await sample(pool, table);
    const moved = source.stats().acked;
    const note = `${seconds} s of churn, backlog ~${BACKLOG.toLocaleString('en-US')} rows, inline pipeline with a no-op handler; the producer vacuumed the table ${last.vacuums} times (vacuumEvery 50,000), autovacuum ${last.autovacuums} times (migrate sets scale_factor 0, threshold 10000, cost_delay 0, fillfactor 80)`;
    return [
      { scenario: SCENARIO, case: 'rows moved (claimed and acked)', value: moved, unit: 'rows', note: `${Math.round(moved / elapsed).toLocaleString('en-US')} rows/s; ${note}` },
      { scenario: SCENARIO, case: 'dead tuples at the end (peak during the run)', value: last.dead, unit: 'tuples', note: `peak ${peakDead.toLocaleString('en-US')}; live rows at the end ${last.live}` },
      { scenario: SCENARIO, case: 'table size at the end, with indexes (peak)', value: Math.round((last.bytes / 1048576) * 10) / 10, unit: 'MiB', note: `peak ${(peakBytes / 1048576).toFixed(1)} MiB: bounded when it stops growing while rows keep moving` },
    ];
  } finally {
    await pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_dead"`).catch(() => undefined);
    await pool.query(`DROP FUNCTION IF EXISTS "${table}_notify"()`).catch(() => undefined);
    await pool.end();
  }
};

export default soak;
