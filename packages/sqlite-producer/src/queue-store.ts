import type { Statement } from 'better-sqlite3';
import { ThroughwayError } from '@throughway/workers';
import { openDatabase, type SqliteDatabase } from './connection.js';
import { columnsOf, migrate } from './migrate.js';
import { quoteIdentifier } from './options.js';

/** A claimed row: `attempts` counts this delivery (1 on the first). */
export interface ClaimedRow {
  id: number;
  payload: string | Buffer;
  metadata: string | null;
  attempts: number;
}

/** A failed message to write back: retried later, or dead-lettered. */
export interface Failure {
  id: number;
  attempts: number;
  error: string;
  /** False after `configureAck(m, { retry: false })`: dead-letter at once. */
  retry: boolean;
  /**
   * When it may be claimed again if it is retried (ms since the epoch). Computed where the
   * options live (the backoff may be a user function, which cannot go to a store thread).
   */
  retryAt: number;
}

/** What a store needs of the options: plain data, so that it can be sent to a store thread. */
export interface StoreConfig {
  database: string;
  busyTimeout: number;
  migrate: boolean;
  table: string;
  leaseMs: number;
  maxAttempts: number;
  onSuccess: 'delete' | 'mark_done';
}

/**
 * Opens a connection and a store on it: creates the tables unless `migrate` is off (then checks
 * the table exists), and uses the mark_done index where there is one.
 */
export function openQueueStore(config: StoreConfig, leasedBy: string): QueueStore {
  const db = openDatabase(config.database, config.busyTimeout);
  try {
    if (config.migrate) migrate(db, { table: config.table, markDone: config.onSuccess === 'mark_done' });
    else {
      for (const table of [config.table, `${config.table}_dead`, `${config.table}_leases`]) {
        if (columnsOf(db, table).length === 0) {
          throw new ThroughwayError('ERR_THROUGHWAY_SQLITE_SCHEMA', `The queue table ${table} does not exist in ${config.database}; run migrate() or leave \`migrate\` on`, { details: { table } });
        }
      }
    }
    const doneIndex = config.onSuccess === 'mark_done' && db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?`).get(`${config.table}_pending`) !== undefined;
    return new QueueStore(db, config, leasedBy, doneIndex);
  } catch (error) {
    db.close();
    throw error;
  }
}

export interface AckCounts {
  acked: number;
  retried: number;
  deadLettered: number;
}

/**
 * Rows that may be behind the scan position (retries whose backoff ran out, expired leases,
 * rows enqueued with a future `availableAt`) are looked for at least this often while fresh rows
 * keep the fast path busy; when the fast path runs dry they are looked for at once.
 */
export const RESCAN_INTERVAL_MS = 1000;

/**
 * The SQL of queue mode on one connection: prepared once, run in short IMMEDIATE transactions.
 *
 * Leases are ranges, not rows. A claim selects up to `n` ready rows in id order and records
 * one row in `<table>_leases` for them: `(first_id, last_id, leased_by, lease_until,
 * created_at)`. Claimed rows are not written at all, so a claim costs a SELECT and a one-row
 * insert, and an ack one range DELETE: rewriting every claimed row to lease it (then deleting
 * it) measured twice the CPU and WAL traffic per row.
 *
 * A row is in flight when a live lease covers its id and is newer than the row's
 * `released_lease`. Lease ids only grow (AUTOINCREMENT); whatever gives a row back (a failure
 * sent to retry, a prefetched row released at drain) sets `released_lease` to the newest lease
 * id so far, so no lease taken until then covers it any more; a lease taken later covers it
 * only if that claim took it, because a claim cuts its range at every row it skips as in flight.
 *
 * `attempts` counts deliveries that ended without success: failures (written back per row) and
 * expired leases. Every claim first ends the expired leases: their rows still in flight get
 * `attempts + 1` and become claimable, so a consumer that keeps dying on a row (a poison row)
 * runs it into the dead-letter table after `maxAttempts` deliveries. A claimed row's delivery
 * number (`ClaimedRow.attempts`) is `attempts + 1`.
 *
 * Ownership: a failure is written back only if the row's `attempts` is still the one this
 * delivery saw (after an expiry the row belongs to its next delivery). A successful ack deletes
 * the row (or marks it done) whoever holds it now: it was processed.
 *
 * The scan starts after the highest id this store claimed (ids only grow: AUTOINCREMENT), so
 * it does not walk over rows still in flight at the head of the queue; a rescan from the start
 * finds what became ready behind it: when the fresh rows run out, when a row this store sent
 * back for a retry becomes ready, when a lease expired, and at least every RESCAN_INTERVAL_MS
 * (for rows retried by other processes and rows enqueued with a later `availableAt`).
 */
/**
 * A queue store on this thread (QueueStore: synchronous) or on its own thread (ThreadedQueueStore:
 * every call answers with a promise).
 */
export interface QueueStoreLike {
  readonly leasedBy: string;
  /** Rows dead-lettered by claims (poison rows past maxAttempts deliveries). */
  readonly deadAtClaim: number;
  claim(n: number): ClaimedRow[] | Promise<ClaimedRow[]>;
  ack(ok: number[], failures: Failure[]): AckCounts | Promise<AckCounts>;
  release(rows: ClaimedRow[]): void | Promise<void>;
  close(): void | Promise<void>;
}

/** A live lease: [first, last, lease id]. */
type LeaseRange = [number, number, number];

/** A lease this store took: deleted once none of its rows is in flight. */
interface OwnLease {
  id: number;
  first: number;
  last: number;
  open: number;
}

export class QueueStore implements QueueStoreLike {
  readonly db: SqliteDatabase;
  readonly leasedBy: string;
  #o: StoreConfig;
  #frontier = 0;
  #lastRescan = 0;
  /** When the earliest row this store sent back for a retry becomes ready: rescan then. */
  #rescanAt = Infinity;
  /** This store's leases with rows in flight, in the order taken. */
  #mine: OwnLease[] = [];
  #select: Statement;
  #expired: Statement;
  #endDelivery: Statement;
  #dropLease: Statement;
  #leaseExists: Statement;
  #live: Statement;
  #putLease: Statement;
  #deleteRange: Statement;
  #doneRange: Statement;
  #retry: Statement;
  #deadCopy: Statement;
  #claimDeadCopy: Statement;
  #deleteRow: Statement;
  #release: Statement;
  #claimTx: (n: number, now: number) => ClaimedRow[];
  #ackTx: (ok: number[], failures: Failure[], now: number) => AckCounts;

  constructor(db: SqliteDatabase, options: StoreConfig, leasedBy: string, useDoneIndex: boolean) {
    this.db = db;
    this.#o = options;
    this.leasedBy = leasedBy;
    const t = quoteIdentifier(options.table, 'table');
    const dead = quoteIdentifier(`${options.table}_dead`, 'table');
    const leases = quoteIdentifier(`${options.table}_leases`, 'table');
    const indexed = useDoneIndex ? ` INDEXED BY ${quoteIdentifier(`${options.table}_pending`, 'table')}` : '';
    this.#select = db.prepare(`SELECT id, payload, metadata, attempts, released_lease FROM ${t}${indexed} WHERE id > ? AND done_at IS NULL AND available_at <= ? ORDER BY id LIMIT ?`).raw(true);
    this.#expired = db.prepare(`SELECT id, first_id, last_id FROM ${leases} WHERE lease_until < ?`).raw(true);
    this.#leaseExists = db.prepare(`SELECT 1 FROM ${leases} WHERE id = ?`).pluck(true);
    this.#endDelivery = db.prepare(`UPDATE ${t} SET attempts = attempts + 1 WHERE id BETWEEN ? AND ? AND released_lease < ? AND done_at IS NULL`);
    this.#dropLease = db.prepare(`DELETE FROM ${leases} WHERE id = ?`);
    this.#live = db.prepare(`SELECT first_id, last_id, id FROM ${leases} WHERE last_id > ? ORDER BY first_id`).raw(true);
    // The newest lease ever taken on this queue: a row given back is released from it and all before.
    const newest = `coalesce((SELECT seq FROM sqlite_sequence WHERE name = ${sqlString(`${options.table}_leases`)}), 0)`;
    this.#putLease = db.prepare(`INSERT INTO ${leases} (first_id, last_id, leased_by, lease_until, created_at) VALUES (?, ?, ?, ?, ?)`);
    this.#deleteRange = db.prepare(`DELETE FROM ${t} WHERE id BETWEEN ? AND ?`);
    this.#doneRange = db.prepare(`UPDATE ${t} SET done_at = ?, leased_by = ? WHERE id BETWEEN ? AND ? AND done_at IS NULL`);
    this.#retry = db.prepare(`UPDATE ${t} SET available_at = ?, last_error = ?, attempts = attempts + 1, released_lease = ${newest} WHERE id = ? AND attempts = ? AND done_at IS NULL`);
    this.#deadCopy = db.prepare(
      `INSERT OR REPLACE INTO ${dead} (id, payload, metadata, attempts, last_error, created_at, failed_at)
       SELECT id, payload, metadata, attempts + 1, ?, created_at, ? FROM ${t} WHERE id = ? AND attempts = ? AND done_at IS NULL`,
    );
    this.#claimDeadCopy = db.prepare(
      `INSERT OR REPLACE INTO ${dead} (id, payload, metadata, attempts, last_error, created_at, failed_at)
       SELECT id, payload, metadata, attempts, coalesce(last_error, ?), created_at, ? FROM ${t} WHERE id = ?`,
    );
    this.#deleteRow = db.prepare(`DELETE FROM ${t} WHERE id = ?`);
    this.#release = db.prepare(`UPDATE ${t} SET released_lease = ${newest} WHERE id = ? AND attempts = ? AND done_at IS NULL`);
    this.#claimTx = db.transaction((n: number, now: number) => this.#claim(n, now));
    this.#ackTx = db.transaction((ok: number[], failures: Failure[], now: number) => this.#ack(ok, failures, now));
  }

  /** Leases up to `n` ready rows, in id order, in one IMMEDIATE transaction. */
  claim(n: number, now = Date.now()): ClaimedRow[] {
    if (n <= 0) return [];
    return (this.#claimTx as unknown as { immediate: (n: number, now: number) => ClaimedRow[] }).immediate(n, now);
  }

  /**
   * Applies acks in one IMMEDIATE transaction: `ok` ids are deleted (or marked done), failures go
   * back to pending with a backoff or to the dead-letter table.
   */
  ack(ok: number[], failures: Failure[], now = Date.now()): AckCounts {
    if (ok.length === 0 && failures.length === 0) return { acked: 0, retried: 0, deadLettered: 0 };
    return (this.#ackTx as unknown as { immediate: (ok: number[], f: Failure[], now: number) => AckCounts }).immediate(ok, failures, now);
  }

  close(): void {
    this.db.close();
  }

  /** Gives back rows claimed but never delivered (prefetched): claimable again at once. */
  release(rows: ClaimedRow[]): void {
    if (rows.length === 0) return;
    this.db
      .transaction(() => {
        for (const r of rows) {
          this.#release.run(r.id, r.attempts - 1);
          this.#countOffRow(r.id);
        }
      })
      .immediate();
  }

  /** Rows dead-lettered by claims (poison rows past maxAttempts deliveries); read by stats. */
  deadAtClaim = 0;

  #claim(n: number, now: number): ClaimedRow[] {
    if (this.#endExpired(now)) this.#rescanAt = now;
    const out: ClaimedRow[] = [];
    let rescanned = now - this.#lastRescan >= RESCAN_INTERVAL_MS || now >= this.#rescanAt;
    if (rescanned) this.#startRescan(now);
    let after = rescanned ? 0 : this.#frontier;
    while (out.length < n) {
      const want = n - out.length;
      const { selected, lastId } = this.#take(after, want, now, out);
      if (selected === want) {
        // Some were in flight elsewhere or poison rows: go on after them.
        after = lastId;
        continue;
      }
      // The rows after `after` ran out: look behind the scan position once for rows that
      // became ready there (retries, expired leases, rows scheduled for later).
      if (rescanned) break;
      rescanned = true;
      this.#startRescan(now);
      after = 0;
    }
    return out;
  }

  #startRescan(now: number): void {
    this.#lastRescan = now;
    this.#rescanAt = Infinity;
  }

  // Ends the leases that ran out (whoever took them): their rows still in flight count one
  // more delivery and are claimable again. True if there were any.
  #endExpired(now: number): boolean {
    const expired = this.#expired.all(now) as [number, number, number][];
    for (const [id, first, last] of expired) {
      this.#endDelivery.run(first, last, id);
      this.#dropLease.run(id);
      const own = this.#mine.find((l) => l.id === id);
      if (own) this.#forget(own);
    }
    return expired.length > 0;
  }

  #take(after: number, n: number, now: number, out: ClaimedRow[]): { selected: number; lastId: number } {
    const rows = this.#select.all(after, now, n) as [number, string | Buffer, string | null, number, number][];
    if (rows.length === 0) return { selected: 0, lastId: after };
    const last = rows[rows.length - 1]![0];
    // Live leases past the scan start (none in the common case: this store's own are behind
    // its frontier, and no other process is claiming).
    const live = this.#live.all(after) as LeaseRange[];
    const max = this.#o.maxAttempts;
    let runFirst = -1;
    let runLast = -1;
    let runCount = 0;
    for (const [id, payload, metadata, ended, released] of rows) {
      if (live.length > 0 && inFlight(live, id, released)) {
        // Cut the lease here: it must not cover a row another lease holds.
        if (runCount > 0) this.#lease(runFirst, runLast, runCount, now);
        runCount = 0;
        continue;
      }
      const attempts = ended + 1;
      if (attempts > max) {
        // Delivered maxAttempts times and never acked (each time the process died or the lease
        // ran out): a poison row. Dead-letter it instead of crashing the consumer again.
        this.#claimDeadCopy.run(`lease expired ${ended} times without an ack`, now, id);
        this.#deleteRow.run(id);
        this.deadAtClaim++;
        continue;
      }
      if (runCount === 0) runFirst = id;
      runLast = id;
      runCount++;
      out.push({ id, payload, metadata, attempts });
    }
    if (runCount > 0) this.#lease(runFirst, runLast, runCount, now);
    if (last > this.#frontier) this.#frontier = last;
    return { selected: rows.length, lastId: last };
  }

  #lease(first: number, last: number, count: number, now: number): void {
    const id = Number(this.#putLease.run(first, last, this.leasedBy, now + this.#o.leaseMs, now).lastInsertRowid);
    this.#mine.push({ id, first, last, open: count });
  }

  // Splits the consecutive ids first..last into runs held by one lease of this store each
  // (undefined: none of this store's leases holds them any more). A row belongs to the newest of
  // this store's leases that covers it: a lease never covers a row in flight under another, so
  // an older lease covering it delivered it before (and was counted off then).
  #holders(first: number, last: number): [number, number, OwnLease | undefined][] {
    const mine = this.#mine;
    let covering = 0;
    let only: OwnLease | undefined;
    for (const l of mine) {
      if (l.last >= first && l.first <= last) {
        covering++;
        only = l;
      }
    }
    if (covering === 0) return [[first, last, undefined]];
    if (covering === 1 && only!.first <= first && last <= only!.last) return [[first, last, only]];
    const runs: [number, number, OwnLease | undefined][] = [];
    for (let id = first; id <= last; id++) {
      let holder: OwnLease | undefined;
      for (let i = mine.length - 1; i >= 0; i--) {
        const l = mine[i]!;
        if (l.first <= id && id <= l.last) {
          holder = l;
          break;
        }
      }
      const run = runs[runs.length - 1];
      if (run && run[2] === holder && run[1] === id - 1) run[1] = id;
      else runs.push([id, id, holder]);
    }
    return runs;
  }

  // True if the lease still holds its rows: no other consumer ended it (it expired and a claim
  // gave its rows to their next delivery). Forgets it if not.
  #holds(lease: OwnLease, checked: Map<OwnLease, boolean>): boolean {
    let live = checked.get(lease);
    if (live === undefined) {
      live = this.#leaseExists.get(lease.id) !== undefined;
      checked.set(lease, live);
      if (!live) this.#forget(lease);
    }
    return live;
  }

  // `count` rows of `lease` are no longer in flight: drop it once none is.
  #countOff(lease: OwnLease, count: number): void {
    lease.open -= count;
    if (lease.open <= 0) {
      this.#dropLease.run(lease.id);
      this.#forget(lease);
    }
  }

  // One row (a failure, a released row) is no longer in flight.
  #countOffRow(id: number): void {
    const [[, , lease]] = this.#holders(id, id) as [[number, number, OwnLease | undefined]];
    if (lease) this.#countOff(lease, 1);
  }

  #forget(lease: OwnLease): void {
    const i = this.#mine.indexOf(lease);
    if (i >= 0) this.#mine.splice(i, 1);
  }

  #ack(ok: number[], failures: Failure[], now: number): AckCounts {
    let acked = 0;
    const checked = new Map<OwnLease, boolean>();
    if (ok.length > 0) {
      // Acks come mostly as one run of consecutive ids: one range statement per run.
      let sorted = true;
      for (let i = 1; i < ok.length; i++) {
        if (ok[i]! <= ok[i - 1]!) {
          sorted = false;
          break;
        }
      }
      if (!sorted) ok = [...new Set(ok)].sort((a, b) => a - b);
      const markDone = this.#o.onSuccess === 'mark_done';
      let start = ok[0]!;
      let prev = start;
      for (let i = 1; i <= ok.length; i++) {
        const id = ok[i];
        if (id === prev + 1) {
          prev = id;
          continue;
        }
        for (const [first, last, lease] of this.#holders(start, prev)) {
          // Rows whose delivery ended (the lease expired and another claim took them over)
          // belong to their next delivery, which will ack them.
          if (!lease || !this.#holds(lease, checked)) continue;
          acked += markDone ? this.#doneRange.run(now, this.leasedBy, first, last).changes : this.#deleteRange.run(first, last).changes;
          this.#countOff(lease, last - first + 1);
        }
        start = prev = id!;
      }
    }
    let retried = 0;
    let deadLettered = 0;
    for (const f of failures) {
      // The row's count of ended deliveries, as this delivery saw it: if it moved, the row
      // belongs to a later delivery.
      const ended = f.attempts - 1;
      if (f.retry && f.attempts < this.#o.maxAttempts) {
        const at = f.retryAt;
        const changed = this.#retry.run(at, f.error, f.id, ended).changes;
        if (changed > 0 && at < this.#rescanAt) this.#rescanAt = at;
        retried += changed;
      } else if (this.#deadCopy.run(f.error, now, f.id, ended).changes > 0) {
        this.#deleteRow.run(f.id);
        deadLettered++;
      }
      this.#countOffRow(f.id);
    }
    return { acked, retried, deadLettered };
  }
}

/** True if a live lease holds the row: it covers the id and is newer than the row's release. */
function inFlight(live: LeaseRange[], id: number, released: number): boolean {
  for (const [first, last, lease] of live) {
    if (first > id) return false;
    if (id <= last && lease > released) return true;
  }
  return false;
}

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
