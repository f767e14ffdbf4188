/**
 * The Postgres queue producer.
 *
 * 1. Claim+ack rate: rows/s from a filled queue to an empty one through a pipeline with a no-op
 *    handler, against two hand-written loops on the same server in the same run:
 *    - "lease loop": what a consumer that must not hold a transaction while it works writes by
 *      hand: claim with `UPDATE ... SET lease ... WHERE id = ANY(ARRAY(SELECT ... FOR UPDATE SKIP
 *      LOCKED))`, then `DELETE ... WHERE id = ANY($1)` — the same two writes per row as the
 *      producer, without the pipeline. The target (>= 0.8 and >= 50,000 rows/s) is against this one.
 *    - "lock loop": `BEGIN; SELECT ... FOR UPDATE SKIP LOCKED; DELETE ... = ANY; COMMIT` — one write
 *      per row, but the rows are held by an open transaction, which only works when the work is
 *      done inside that transaction; reported for reference.
 * 2. Scale-out: 1 vs 2 processes on one queue, each a pipeline with a no-op handler. On 2 cores the
 *    ratio cannot be 2x: the processes and the Postgres backends share the same two cores, so the
 *    figure reports where the CPU went (our processes vs everything else on the machine, which
 *    during a round is mostly Postgres).
 *
 * Each case has its own queue table; rounds alternate between cases, medians are kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Pipeline } from '@throughway/core';
import { enqueue, migrate, postgresQueue, queueCounts, type PostgresQueueSource } from '@throughway/postgres-producer';
import type { BenchResult, Scenario } from '../scenario.js';
import { fmtRate, log, median, sleep } from '../harness/measure.js';

const NAME = 'postgres-producer';
const SCENARIO = 'postgres queue claim+ack';
const PG_BASE = process.env.PG_URL ?? 'postgres://postgres@/test?host=/var/run/postgresql';
const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);
const WORKER = fileURLToPath(new URL('../fixtures/pg-queue-worker.js', import.meta.url));

interface Case {
  name: string;
  table: string;
  /** Called before the round's rows are enqueued: a running pipeline takes them as soon as they commit. */
  arm(rows: number): void;
  run(rows: number): Promise<void>;
  stop(): Promise<void>;
}

function payloadsFor(round: number, n: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = `{"order":${round * n + i},"customer":"cus_${i % 997}","amount":${100 + (i % 9000)}}`;
  return out;
}

/** Machine-wide CPU time in ms (all cores, all processes), from /proc/stat. */
function machineCpuMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const busy = line[0]! + line[1]! + line[2]! + line[5]! + line[6]! + line[7]!;
  return (busy * 1000) / 100; // USER_HZ is 100 on Linux
}

function loopCase(name: 'lock loop' | 'lease loop', pool: pg.Pool, table: string, claimSize: number): Case {
  const lock = `SELECT id, payload FROM "${table}" ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`;
  const lease = `UPDATE "${table}" SET lease = 1, available_at = now() + interval '30 s' WHERE id = ANY (ARRAY (
      SELECT id FROM "${table}" WHERE available_at <= now() AND done_at IS NULL ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING id, payload`;
  const remove = `DELETE FROM "${table}" WHERE id = ANY($1::bigint[])`;
  return {
    name,
    table,
    arm() {},
    async run(total) {
      const client = await pool.connect();
      try {
        let done = 0;
        while (done < total) {
          if (name === 'lock loop') await client.query('BEGIN');
          const { rows } = await client.query<{ id: string; payload: string }>({ name: `claim-${table}`, text: name === 'lock loop' ? lock : lease, values: [claimSize] });
          if (rows.length === 0) throw new Error(`${name}: queue empty after ${done} of ${total}`);
          await client.query({ name: `delete-${table}`, text: remove, values: [rows.map((r) => r.id)] });
          if (name === 'lock loop') await client.query('COMMIT');
          done += rows.length;
        }
      } finally {
        client.release();
      }
    },
    async stop() {},
  };
}

async function pipelineCase(name: string, table: string, runtime: 'inline' | 'threads', prefetch: number, synchronousCommit = false): Promise<Case> {
  const source: PostgresQueueSource = postgresQueue({ connection: PG_BASE, table, pollInterval: 5, prefetch, metadata: false, migrate: false, synchronousCommit });
  const pipeline = await Pipeline.start({ name: `bench-pg-${name.replace(/\W+/g, '-')}`, handlers, producer: { module: source }, processors: { default: { runtime, maxDemand: 1000 } } });
  let target = 0;
  return {
    name,
    table,
    arm(total) {
      target = source.stats().acked + total;
    },
    async run() {
      while (source.stats().acked < target) await sleep(1);
    },
    async stop() {
      await pipeline.stop();
    },
  };
}

interface Worker {
  child: ChildProcess;
  out: string[];
  exited: Promise<void>;
}

function startWorker(table: string): Promise<Worker> {
  const child = spawn(process.execPath, ['--single-threaded-gc', WORKER, JSON.stringify({ url: PG_BASE, table })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out: string[] = [];
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out.push(d);
      if (out.join('').includes('ready')) resolve({ child, out, exited });
    });
    child.on('exit', (code) => reject(new Error(`pg queue worker exited ${code} before it was ready`)));
  });
}

/** Time to drain `rows` with `n` worker processes; CPU of the workers and of the whole machine. */
async function scaleRound(pool: pg.Pool, table: string, n: number, rows: number, round: number): Promise<{ rate: number; oursUs: number; machineUs: number }> {
  const workers = await Promise.all(Array.from({ length: n }, () => startWorker(table)));
  await sleep(300); // let their first (empty) claims and LISTEN settle
  const m0 = machineCpuMs();
  const t0 = performance.now();
  await enqueue(pool, payloadsFor(round, rows), { table });
  for (;;) {
    const c = await queueCounts(pool, { table });
    if (c.ready + c.leased + c.delayed === 0) break;
    await sleep(5);
  }
  const seconds = (performance.now() - t0) / 1000;
  const machine = machineCpuMs() - m0;
  let ours = 0;
  for (const w of workers) {
    w.child.kill('SIGTERM');
    await w.exited;
    ours += (JSON.parse(w.out.join('').trim().split('\n').at(-1)!) as { cpuMs: number }).cpuMs;
  }
  return { rate: rows / seconds, oursUs: (ours * 1000) / rows, machineUs: (machine * 1000) / rows };
}

const postgresProducer: Scenario = async ({ quick }) => {
  const pool = new pg.Pool({ connectionString: PG_BASE, max: 4 });
  pool.on('error', () => undefined);
  const tag = `${process.pid}`;
  const tables = ['lock', 'lease', 'inline', 'threads', 'scale', 'sync'].map((n) => `tw_bench_pgq_${n}_${tag}`);
  const cases: Case[] = [];
  const results: BenchResult[] = [];
  try {
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      return [{ scenario: SCENARIO, case: 'not run', value: Number.NaN, unit: 'rows/s', note: `PostgreSQL not reachable at ${PG_BASE}: ${(error as Error).message}` }];
    }
    for (const t of tables) await migrate(pool, { table: t });
    const rows = quick ? 10_000 : 50_000;
    const rounds = quick ? 1 : 3;
    cases.push(loopCase('lease loop', pool, tables[1]!, 1000));
    cases.push(loopCase('lock loop', pool, tables[0]!, 1000));
    cases.push(await pipelineCase('inline, maxDemand 1000, prefetch 1000', tables[2]!, 'inline', 1000));
    cases.push(await pipelineCase('threads, maxDemand 1000, prefetch 1000', tables[3]!, 'threads', 1000));
    cases.push(await pipelineCase('inline, maxDemand 1000, prefetch 1000, synchronousCommit: true', tables[5]!, 'inline', 1000, true));
    const rates: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.name, []]));
    const cpu: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.name, []]));
    for (let r = -1; r < rounds; r++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + Math.max(r, 0)) % cases.length]!;
        // The table is empty here: the vacuum clears the last round's dead tuples. (After the
        // enqueue it would run while a pipeline, woken by the enqueue's NOTIFY, already consumes:
        // the round then counted rows taken before it started, and waited for acks that had come.)
        await pool.query(`VACUUM ANALYZE "${c.table}"`);
        c.arm(rows);
        await enqueue(pool, payloadsFor(r + 1, rows), { table: c.table });
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await c.run(rows);
        const seconds = (performance.now() - t0) / 1000;
        const used = process.cpuUsage(c0);
        if (r >= 0) {
          rates[c.name]!.push(rows / seconds);
          cpu[c.name]!.push(((used.user + used.system) / rows));
        }
        log(NAME, `${r < 0 ? 'warm-up' : `round ${r + 1}`} ${c.name}: ${fmtRate(rows / seconds)}`);
      }
    }
    const lease = median(rates['lease loop']!);
    const lock = median(rates['lock loop']!);
    const each = `${rows.toLocaleString('en-US')} rows a round, median of ${rounds}`;
    results.push({
      scenario: SCENARIO,
      case: 'hand-written lease loop: SKIP LOCKED claim with a lease + DELETE = ANY (no pipeline)',
      value: Math.round(lease),
      unit: 'rows/s',
      note: `baseline: UPDATE ... SET lease WHERE id = ANY(ARRAY(SELECT ... LIMIT 1000 FOR UPDATE SKIP LOCKED)) RETURNING, then DELETE WHERE id = ANY($1); one connection, unix socket; ${median(cpu['lease loop']!).toFixed(2)} CPU-µs/row in this process; ${each}`,
    });
    results.push({
      scenario: SCENARIO,
      case: 'hand-written lock loop: BEGIN; SELECT FOR UPDATE SKIP LOCKED; DELETE = ANY; COMMIT (no pipeline)',
      value: Math.round(lock),
      unit: 'rows/s',
      baseline: { name: 'lease loop', value: Math.round(lease) },
      ratio: median(rates['lock loop']!.map((x, i) => x / rates['lease loop']![i]!)),
      note: `reference: one write per row instead of two, but the rows are held by an open transaction, so the work must happen inside it; ${each}`,
    });
    for (const c of cases.slice(2)) {
      const rate = median(rates[c.name]!);
      const ratio = median(rates[c.name]!.map((x, i) => x / rates['lease loop']![i]!));
      const vsLock = median(rates[c.name]!.map((x, i) => x / rates['lock loop']![i]!));
      results.push({
        scenario: SCENARIO,
        case: `pipeline ${c.name}`,
        value: Math.round(rate),
        unit: 'rows/s',
        baseline: { name: 'lease loop', value: Math.round(lease) },
        ratio,
        target: '>= 0.8 of the lease loop and >= 50,000 rows/s',
        met: ratio >= 0.8 && rate >= 50_000,
        note: `no-op handler, the producer's claim (same statement as the lease loop, plus deliveries and the token) and batched acks (one DELETE per group), ${c.name.includes('synchronousCommit: true') ? 'each commit waiting for the WAL flush like the loops' : 'committed with synchronous_commit off (the default)'}; ${vsLock.toFixed(2)}x the lock loop; ${median(cpu[c.name]!).toFixed(2)} CPU-µs/row in this process (all threads); ratio: median of per-round ratios; ${each}`,
      });
    }
    for (const c of cases) await c.stop();
    cases.length = 0;

    // Scale-out: alternate 1 and 2 processes.
    const scaleRows = quick ? 10_000 : 50_000;
    const one: { rate: number; oursUs: number; machineUs: number }[] = [];
    const two: typeof one = [];
    for (let r = 0; r < rounds; r++) {
      for (const n of r % 2 === 0 ? [1, 2] : [2, 1]) {
        const result = await scaleRound(pool, tables[4]!, n, scaleRows, 100 + r * 2 + n);
        (n === 1 ? one : two).push(result);
        log(NAME, `scale-out round ${r + 1}, ${n} process${n > 1 ? 'es' : ''}: ${fmtRate(result.rate)} (ours ${result.oursUs.toFixed(1)} CPU-µs/row, machine ${result.machineUs.toFixed(1)})`);
      }
    }
    const where = (xs: typeof one) => `our processes ${median(xs.map((x) => x.oursUs)).toFixed(1)} CPU-µs/row, the whole machine ${median(xs.map((x) => x.machineUs)).toFixed(1)} (the rest is mostly Postgres)`;
    results.push({
      scenario: SCENARIO,
      case: 'scale-out: 1 process',
      value: Math.round(median(one.map((x) => x.rate))),
      unit: 'rows/s',
      note: `separate process, inline pipeline, no-op handler, prefetch 1000; ${where(one)}; ${scaleRows.toLocaleString('en-US')} rows a round, median of ${rounds}`,
    });
    results.push({
      scenario: SCENARIO,
      case: 'scale-out: 2 processes on one queue',
      value: Math.round(median(two.map((x) => x.rate))),
      unit: 'rows/s',
      baseline: { name: '1 process', value: Math.round(median(one.map((x) => x.rate))) },
      ratio: median(two.map((x, i) => x.rate / one[i]!.rate)),
      note: `${where(two)}; on 2 cores the processes and the server share the CPU, so 2x is out of reach; median of ${rounds}`,
    });
    return results;
  } finally {
    for (const c of cases) await c.stop().catch(() => undefined);
    for (const t of tables) {
      await pool.query(`DROP TABLE IF EXISTS "${t}", "${t}_dead"`).catch(() => undefined);
      await pool.query(`DROP FUNCTION IF EXISTS "${t}_notify"()`).catch(() => undefined);
    }
    await pool.end();
  }
};

export default postgresProducer;
