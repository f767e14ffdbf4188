/**
 * The SQLite queue producer's claim+ack rate: rows/s from a filled queue to an empty one through a
 * pipeline with a no-op handler, against a hand-written better-sqlite3 loop in the same run that
 * claims and deletes the same rows with the same statements and no pipeline (so the ratio is the
 * cost of the pipeline: messages, demand, dispatch, acks). Target: >= 200,000 rows/s.
 *
 * Each case has its own queue file and (for the pipelines) one running pipeline whose producer
 * polls its empty queue; a round enqueues N rows (not timed), then times from the enqueue's commit
 * to the last ack. Cases are interleaved round by round (order rotated) and medians kept, because
 * the machine is shared and noisy; CPU-seconds per row are reported too, which the neighbours
 * disturb less than the wall clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Pipeline, type PipelineOptions } from '@throughway/core';
import { enqueue, migrate, sqliteQueue, type SqliteQueueOptions, type SqliteQueueSource } from '@throughway/sqlite-producer';
import type { BenchResult, Scenario } from '../scenario.js';
import { fmtRate, gc, log, median, sleep } from '../harness/measure.js';

const NAME = 'sqlite-producer';
const SCENARIO = 'sqlite queue claim+ack';
const TARGET = 200_000;
const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);

/** One measured case: `fill` enqueues a round's rows, `run` consumes them and resolves when done. */
interface Case {
  name: string;
  file: string;
  run(rows: number): Promise<void>;
  stop(): Promise<void>;
  detail(): string;
}

function payloadsFor(round: number, n: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = `{"order":${round * n + i},"customer":"cus_${i % 997}","amount":${100 + (i % 9000)}}`;
  return out;
}

/**
 * The baseline: what a user would hand-write with better-sqlite3 and no pipeline, with the
 * producer's statements: BEGIN IMMEDIATE; SELECT the next ready rows by id; INSERT one lease row
 * for their id range; COMMIT; then BEGIN IMMEDIATE; DELETE the range and the lease; COMMIT.
 */
function rawCase(file: string, claimSize: number): Case {
  const db = new Database(file);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const select = db.prepare(`SELECT id, payload, metadata, attempts, released_lease FROM throughway_events WHERE id > ? AND done_at IS NULL AND available_at <= ? ORDER BY id LIMIT ?`).raw(true);
  const lease = db.prepare(`INSERT INTO throughway_events_leases (first_id, last_id, leased_by, lease_until, created_at) VALUES (?, ?, ?, ?, ?)`);
  const remove = db.prepare('DELETE FROM throughway_events WHERE id BETWEEN ? AND ?');
  const unlease = db.prepare('DELETE FROM throughway_events_leases WHERE id = ?');
  const by = 'bench:raw:0:loop';
  let frontier = 0;
  const claim = db.transaction((n: number) => {
    const now = Date.now();
    const rows = select.all(frontier, now, n) as [number, unknown, unknown, number, number][];
    let leaseId = 0;
    if (rows.length > 0) {
      leaseId = Number(lease.run(rows[0]![0], rows[rows.length - 1]![0], by, now + 30_000, now).lastInsertRowid);
      frontier = rows[rows.length - 1]![0];
    }
    return { rows, leaseId };
  });
  const ack = db.transaction((first: number, last: number, leaseId: number) => {
    remove.run(first, last);
    unlease.run(leaseId);
  });
  return {
    name: 'raw',
    file,
    async run(total) {
      let done = 0;
      while (done < total) {
        const { rows, leaseId } = claim.immediate(claimSize);
        if (rows.length === 0) throw new Error(`raw loop: queue empty after ${done} of ${total}`);
        ack.immediate(rows[0]![0], rows[rows.length - 1]![0], leaseId);
        done += rows.length;
      }
    },
    async stop() {
      db.close();
    },
    detail: () => `claims of ${claimSize}`,
  };
}

async function pipelineCase(name: string, file: string, processors: PipelineOptions['processors'], queue: Omit<SqliteQueueOptions, 'database'> = {}): Promise<Case> {
  const source: SqliteQueueSource = sqliteQueue({ database: file, pollInterval: 2, ...queue });
  const pipeline = await Pipeline.start({ name: `bench-${name.replace(/\W+/g, '-')}`, handlers, producer: { module: source }, processors });
  return {
    name,
    file,
    async run(total) {
      const target = source.stats().acked + total;
      // A 1 ms check costs nothing next to a round of a second or more.
      while (source.stats().acked < target) await sleep(1);
    },
    async stop() {
      await pipeline.stop();
    },
    detail: () => {
      const p = pipeline.topology().processors[0]!;
      const q = source.options;
      return `${p.runtime}, ${p.concurrency} processors, maxDemand ${p.maxDemand}/minDemand ${p.minDemand}, store on ${q.thread ? 'its own thread' : 'the main thread'}, metadata ${q.metadata ? 'on' : 'off'}`;
    },
  };
}

const sqliteProducer: Scenario = async ({ quick }) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'throughway-bench-sqlite-producer-'));
  const rows = quick ? 60_000 : 150_000;
  const rounds = quick ? 2 : 3;
  const files = ['raw', 'inline', 'inline-thread', 'threads', 'threads-tuned'].map((n) => path.join(dir, `${n}.db`));
  for (const f of files) migrate(f);
  const cases: Case[] = [];
  const rates: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  /** Main-thread busy time per row (event-loop utilisation): what the producer leaves to the rest of the pipeline. */
  const busy: Record<string, number[]> = {};
  try {
    cases.push(rawCase(files[0]!, 1000));
    cases.push(await pipelineCase('inline, maxDemand 1000', files[1]!, { default: { runtime: 'inline', maxDemand: 1000 } }));
    cases.push(await pipelineCase('inline, maxDemand 1000, store thread', files[2]!, { default: { runtime: 'inline', maxDemand: 1000 } }, { thread: true }));
    cases.push(await pipelineCase('threads', files[3]!, { default: { runtime: 'threads' } }));
    // What the demo uses: no metadata (a per-message object to clone into the threads) and the store off the main thread.
    cases.push(await pipelineCase('threads, store thread, no metadata', files[4]!, { default: { runtime: 'threads' } }, { thread: true, metadata: false }));
    for (const c of cases) {
      rates[c.name] = [];
      cpu[c.name] = [];
      busy[c.name] = [];
    }
    for (let r = -1; r < rounds; r++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + Math.max(r, 0)) % cases.length]!;
        enqueue(c.file, payloadsFor(r + 1, rows));
        gc();
        const c0 = process.cpuUsage();
        const e0 = performance.eventLoopUtilization();
        const t0 = performance.now();
        await c.run(rows);
        const seconds = (performance.now() - t0) / 1000;
        const used = process.cpuUsage(c0);
        const elu = performance.eventLoopUtilization(e0);
        // Round -1 warms up the JIT, the statement caches, the threads' adaptive demand.
        if (r >= 0) {
          rates[c.name]!.push(rows / seconds);
          cpu[c.name]!.push((used.user + used.system) / 1e6 / rows);
          busy[c.name]!.push(elu.active / 1000 / rows);
        }
        log(NAME, `${r < 0 ? 'warm-up' : `round ${r + 1}`} ${c.name}: ${fmtRate(rows / seconds)}`);
      }
    }
    const results: BenchResult[] = [];
    const raw = median(rates.raw!);
    for (const c of cases) {
      const rate = median(rates[c.name]!);
      const cpuUs = median(cpu[c.name]!) * 1e6;
      const mainUs = median(busy[c.name]!) * 1e6;
      if (c.name === 'raw') {
        results.push({
          scenario: SCENARIO,
          case: 'raw better-sqlite3 loop (no pipeline)',
          value: Math.round(rate),
          unit: 'rows/s',
          note: `baseline: same statements, ${c.detail()}, delete by id range; ${cpuUs.toFixed(2)} CPU-µs/row, all on the main thread; ${rows.toLocaleString('en-US')} rows a round, median of ${rounds}`,
        });
        continue;
      }
      const ratio = median(rates[c.name]!.map((x, i) => x / rates.raw![i]!));
      results.push({
        scenario: SCENARIO,
        case: `pipeline ${c.name}`,
        value: Math.round(rate),
        unit: 'rows/s',
        baseline: { name: 'raw better-sqlite3 loop', value: Math.round(raw) },
        ratio,
        target: `>= ${TARGET.toLocaleString('en-US')} rows/s`,
        met: rate >= TARGET,
        note: `no-op handler, ${c.detail()}; ${cpuUs.toFixed(2)} CPU-µs/row (all threads), main thread busy ${mainUs.toFixed(2)} µs/row; ratio: median of per-round ratios; ${rows.toLocaleString('en-US')} rows a round, median of ${rounds}`,
      });
    }
    return results;
  } finally {
    for (const c of cases) await c.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
};

export default sqliteProducer;
