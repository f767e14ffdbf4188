/**
 * What the queue file remembers about the demo's run: the seed, how many events it must hold, how
 * many are already enqueued, the generator's tally, and the process working on it. Lives in the
 * queue's SQLite file, beside the queue tables, so that the record and the events it describes
 * are written in the same transactions.
 *
 * This is what makes a rerun resume instead of enqueueing the events again: generation is
 * deterministic, so a run interrupted while enqueueing regenerates from the seed and skips the
 * events already enqueued; a run interrupted while processing finds them all in the queue.
 */
import type Database from 'better-sqlite3';
import { SetupError } from './errors.js';
import type { Tally } from './generator.js';

export interface RunRecord {
  seed: number;
  events: number;
  /** Events already in the queue (equal to `events` once generation finished). */
  enqueued: number;
  /** Set once every event is enqueued. */
  tally: Tally | null;
  /** The process working on this queue, if one claimed it and has not finished. */
  pid: number | null;
  createdAt: number;
  /** Set when a run processed the whole queue and ran its check: nothing is left to resume. */
  finishedAt: number | null;
}

const TABLE = 'mystex_run';

export function migrateRunRecord(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS ${TABLE} (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seed       INTEGER NOT NULL,
    events     INTEGER NOT NULL,
    enqueued   INTEGER NOT NULL DEFAULT 0,
    tally      TEXT,
    pid        INTEGER,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
  )`);
  // A queue file of an earlier version of the demo has no finished_at.
  const columns = db.prepare(`SELECT name FROM pragma_table_info('${TABLE}')`).pluck().all() as string[];
  if (!columns.includes('finished_at')) db.exec(`ALTER TABLE ${TABLE} ADD COLUMN finished_at INTEGER`);
}

export function readRunRecord(db: Database.Database): RunRecord | null {
  const row = db.prepare(`SELECT seed, events, enqueued, tally, pid, created_at, finished_at FROM ${TABLE} WHERE id = 1`).get() as
    | { seed: number; events: number; enqueued: number; tally: string | null; pid: number | null; created_at: number; finished_at: number | null }
    | undefined;
  if (!row) return null;
  return {
    seed: row.seed,
    events: row.events,
    enqueued: row.enqueued,
    tally: row.tally ? (JSON.parse(row.tally) as Tally) : null,
    pid: row.pid,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

export function createRunRecord(db: Database.Database, seed: number, events: number): RunRecord {
  const createdAt = Date.now();
  db.prepare(`INSERT INTO ${TABLE} (id, seed, events, enqueued, created_at) VALUES (1, ?, ?, 0, ?)`).run(seed, events, createdAt);
  return { seed, events, enqueued: 0, tally: null, pid: null, createdAt, finishedAt: null };
}

/** Marks the run finished (its check ran): a later run on this queue starts over instead of resuming. */
export function recordFinished(db: Database.Database): void {
  db.prepare(`UPDATE ${TABLE} SET finished_at = ? WHERE id = 1`).run(Date.now());
}

/** Call inside the transaction that enqueued the events, so the count never runs ahead of them. */
export function recordEnqueued(db: Database.Database, enqueued: number): void {
  db.prepare(`UPDATE ${TABLE} SET enqueued = ? WHERE id = 1`).run(enqueued);
}

export function recordTally(db: Database.Database, tally: Tally): void {
  db.prepare(`UPDATE ${TABLE} SET tally = ? WHERE id = 1`).run(JSON.stringify(tally));
}

/**
 * Claims the queue for this process. Refuses when another live process holds it (two demos on one
 * queue would each count the other's work as missing). A holder that is gone (killed) is replaced:
 * the caller may then release the rows it had leased.
 *
 * @returns the pid of a dead previous holder, or null
 */
export function claimRun(db: Database.Database, pid: number): number | null {
  return db
    .transaction(() => {
      const holder = (db.prepare(`SELECT pid FROM ${TABLE} WHERE id = 1`).pluck().get() as number | null | undefined) ?? null;
      if (holder !== null && holder !== pid && isAlive(holder)) {
        throw new SetupError(`another demo process (pid ${holder}) is working on this queue; wait for it or stop it first`);
      }
      db.prepare(`UPDATE ${TABLE} SET pid = ? WHERE id = 1`).run(pid);
      return holder !== null && holder !== pid ? holder : null;
    })
    .immediate();
}

export function releaseRun(db: Database.Database, pid: number): void {
  db.prepare(`UPDATE ${TABLE} SET pid = NULL WHERE id = 1 AND pid = ?`).run(pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
