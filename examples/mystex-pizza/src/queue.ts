/**
 * The PizzaBarn event queue: a `@throughway/sqlite-producer` queue table in its own SQLite file,
 * filled by the generator, plus the run record (run-record.ts) that makes reruns resume.
 *
 * Why a file of its own by default: SQLite has one writer per file. The queue is written by the
 * main thread (claims and acks, several transactions per batch) and the tables by the batch
 * worker; in one file each would wait for the other's write lock, and better-sqlite3 waits
 * synchronously, freezing the main thread while a batch commits. See the report in run.ts for the
 * measured difference (`--queue <database path>` puts both in one file).
 */
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { enqueue, migrate, openDatabase, queueDrained as sqliteQueueDrained, releaseLeases } from '@throughway/sqlite-producer';
import { UsageError } from './errors.js';
import type { QueueState } from './check.js';
import type { DatabaseTarget } from './database.js';
import { reasonOf } from './decode.js';
import { EventGenerator, tallyFor, type Tally } from './generator.js';
import { createRunRecord, migrateRunRecord, readRunRecord, recordEnqueued, recordTally } from './run-record.js';

export const QUEUE_TABLE = 'pizzabarn_events';
export const DEAD_TABLE = `${QUEUE_TABLE}_dead`;
const CHUNK = 10_000;

/** Beside a SQLite database; for Postgres, in the temp dir, named after the URL and schema. */
export function defaultQueuePath(target: DatabaseTarget): string {
  if (target.kind === 'sqlite') {
    const ext = path.extname(target.path);
    return `${ext ? target.path.slice(0, -ext.length) : target.path}-queue${ext || '.db'}`;
  }
  const hash = createHash('sha256').update(`${target.url}\u0000${target.schema}`).digest('hex').slice(0, 10);
  return path.join(os.tmpdir(), `mystex-pizza-queue-${target.schema}-${hash}.db`);
}

/** Opens the queue file (WAL, busy timeout) and creates the queue and run-record tables. */
export function openQueue(file: string): Database.Database {
  const db = openDatabase(file, 30_000);
  migrate(db, { table: QUEUE_TABLE });
  migrateRunRecord(db);
  return db;
}

export interface Filled {
  tally: Tally;
  /** True when the queue already held (some of) this run's events. */
  resumed: boolean;
  /** Events enqueued by this call. */
  enqueuedNow: number;
  enqueueMs: number;
}

/**
 * Makes the queue hold the run's `events` events, generating only what is missing. Each chunk is
 * enqueued in the same transaction that advances the record's count, so a kill at any point
 * leaves the two in agreement.
 */
export function fillQueue(db: Database.Database, seed: number, events: number, onChunk?: (enqueued: number) => void): Filled {
  const started = performance.now();
  let record = readRunRecord(db);
  if (record && (record.seed !== seed || record.events !== events)) {
    throw new UsageError(
      `the queue ${db.name} holds a run of ${record.events} events with seed ${record.seed}; rerun with --events ${record.events} --seed ${record.seed} to resume it, or pick another --database (or delete the files) to start over`,
    );
  }
  const resumed = record !== null && record.enqueued > 0;
  record ??= createRunRecord(db, seed, events);
  if (record.enqueued >= events) {
    const tally = record.tally ?? tallyFor(seed, events);
    return { tally, resumed, enqueuedNow: 0, enqueueMs: 0 };
  }
  const generator = new EventGenerator(seed, events);
  let produced = 0;
  let enqueued = record.enqueued;
  const append = db.transaction((payloads: string[], total: number) => {
    enqueue(db, payloads, { table: QUEUE_TABLE });
    recordEnqueued(db, total);
  });
  for (const chunk of generator.chunks(CHUNK)) {
    const from = produced;
    produced += chunk.length;
    if (produced <= enqueued) continue; // already in the queue from an interrupted run
    append.immediate(from < enqueued ? chunk.slice(enqueued - from) : chunk, produced);
    enqueued = produced;
    onChunk?.(enqueued);
  }
  const tally = generator.tally();
  recordTally(db, tally);
  return { tally, resumed, enqueuedNow: events - record.enqueued, enqueueMs: performance.now() - started };
}

/** Rows not yet acked (pending, leased, or waiting to be retried). */
export function countRemaining(db: Database.Database): number {
  return db.prepare(`SELECT count(*) FROM ${QUEUE_TABLE}`).pluck().get() as number;
}

/** True once no row waits to be acked: the end test polled by `--workers` runs (no count of the rows). */
export function queueDrained(db: Database.Database): boolean {
  return sqliteQueueDrained(db, { table: QUEUE_TABLE });
}

/** Remaining rows and dead letters by reason code, for the summary and the check. */
export function queueState(db: Database.Database): QueueState {
  const deadLetters: Record<string, number> = {};
  for (const { last_error, n } of db.prepare(`SELECT last_error, count(*) AS n FROM ${DEAD_TABLE} GROUP BY last_error`).iterate() as Iterable<{ last_error: string | null; n: number }>) {
    const reason = reasonOf(last_error ?? '');
    deadLetters[reason] = (deadLetters[reason] ?? 0) + n;
  }
  return { remaining: countRemaining(db), deadLetters };
}

/**
 * Makes the rows a killed process had leased claimable now, instead of after their lease runs
 * out (the next claim counts that delivery as ended). Only for a holder known to be dead
 * (run-record.ts checks): a live one still owns them. Returns how many rows it held.
 */
export function releaseLeasesOf(db: Database.Database, pid: number): number {
  return releaseLeases(db, { table: QUEUE_TABLE, holderPrefix: `${os.hostname()}:${pid}:` });
}
