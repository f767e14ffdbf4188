import { ThroughwayError } from '@throughway/workers';
import { openDatabase, openError, type SqliteDatabase } from './connection.js';
import { columnsOf, migrate } from './migrate.js';
import { prepareQueueStatements, type QueueStatements } from './queue-sql.js';

/**
 * A claimed row. `attempts` is this attempt's number: failures so far + 1 (1 on the first);
 * `deliveries` the deliveries before this one that ended without an ack (a crash, an expired
 * lease); `lease` the lease it was claimed under, which its ack counts off.
 */
export interface ClaimedRow {
  id: number;
  payload: string | Buffer;
  metadata: string | null;
  attempts: number;
  deliveries: number;
  lease: number;
}

/** A failed message to write back: retried later, or dead-lettered. */
export interface Failure {
  id: number;
  /** The attempt that failed (as in ClaimedRow). */
  attempts: number;
  /** As in ClaimedRow: with `attempts`, which delivery failed. */
  deliveries: number;
  /** The lease of that delivery (0 if unknown). */
  lease: number;
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
  maxDeliveries: number;
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
    // Creating or checking the tables failed (a read-only file, say): the same coded error as
    // failing to open it.
    throw openError(config.database, error);
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
 * The SQL of queue mode on one connection: prepared once (queue-sql.ts), run in short IMMEDIATE
 * transactions.
 *
 * Leases are ranges, not rows. A claim selects up to `n` ready rows in id order and records
 * one row in `<table>_leases` for them: `(first_id, last_id, leased_by, lease_until,
 * created_at)`. Claimed rows are not written at all, so a claim costs a SELECT and a one-row
 * insert, and an ack one range DELETE: rewriting every claimed row to lease it (then deleting
 * it) measured twice the CPU and WAL traffic per row.
 *
 * A lease holds a row when it covers its id, is newer than the row's `released_lease`, and the
 * row was ready when the lease was taken (`available_at <= created_at`: a claim skips rows in
 * backoff, which its range may still span). Lease ids only grow (AUTOINCREMENT); whatever gives
 * a row back (a failure sent to retry, a prefetched row released at drain) sets `released_lease`
 * to the newest lease id so far, so no lease taken until then holds it any more; a lease taken
 * later holds it only if that claim took it, because a claim cuts its range at every row it
 * skips as in flight.
 *
 * Two counts per row, because a crash is not the message's fault:
 * - `attempts`: deliveries that ended in a failure (written back per row by the ack). Past
 *   `maxAttempts` the row is dead-lettered with the failure's reason.
 * - `deliveries`: deliveries that ended with no ack at all (the process died, or the lease ran
 *   out). Every claim first ends the expired leases: the rows they held get `deliveries + 1` and
 *   become claimable. A row that reaches `maxDeliveries` (a row that kills every process that
 *   touches it) is dead-lettered by the claim, with a reason that says so.
 * A delivery is identified by the row's two counts as it saw them: whatever ends it moves one.
 *
 * Ownership: a failure is written back only if the row's counts are still the ones its delivery
 * saw (after an expiry the row belongs to its next delivery). A successful ack deletes the row
 * (or marks it done) whoever holds it now: it was processed, and a later delivery failing must
 * not dead-letter it. Every ack, failure or release counts off the lease its own delivery was
 * made under (carried with the message), never another: a late ack from an expired lease must
 * not drop the lease that holds the row's next delivery.
 *
 * The scan starts after the highest id this store claimed (ids only grow: AUTOINCREMENT), so
 * it does not walk over rows still in flight at the head of the queue; a rescan from the start
 * finds what became ready behind it: when a row this store sent back for a retry becomes ready,
 * when a lease expired, after this store gave rows back, and at least every RESCAN_INTERVAL_MS
 * (for rows retried or given back by other processes and rows enqueued with a later
 * `availableAt`), not on every claim that finds no fresh rows.
 */
/**
 * A queue store on this thread (QueueStore: synchronous) or on its own thread (ThreadedQueueStore:
 * every call answers with a promise).
 */
export interface QueueStoreLike {
  readonly leasedBy: string;
  /** Rows dead-lettered by claims (rows past maxDeliveries deliveries without an ack). */
  readonly deadAtClaim: number;
  /**
   * Leases up to `n` rows, then up to `extra` more (prefetch) while their payloads stay within
   * `extraBytes` (see {@link payloadBytes}).
   */
  claim(n: number, extra?: number, extraBytes?: number): ClaimedRow[] | Promise<ClaimedRow[]>;
  /** `ok[i]` was processed under lease `leases[i]`. */
  ack(ok: number[], leases: number[], failures: Failure[]): AckCounts | Promise<AckCounts>;
  release(rows: ClaimedRow[]): void | Promise<void>;
  /** Moves the end of these leases (this store's own) to `leaseMs` from now. */
  renew(leases: number[]): void | Promise<void>;
  close(): void | Promise<void>;
}

/** The size a payload counts for in byte bounds: bytes of a BLOB, characters of a TEXT. */
export function payloadBytes(payload: string | Uint8Array): number {
  return typeof payload === 'string' ? payload.length : payload.byteLength;
}

/** A live lease: [first, last, lease id, created_at]. */
type LeaseRange = [number, number, number, number];

/** Rows read per statement while prefetching within a byte budget, before sizes are known. */
const PREFETCH_CHUNK = 64;

/** A lease this store took: deleted once none of its rows is in flight. */
interface OwnLease {
  id: number;
  open: number;
}

export class QueueStore implements QueueStoreLike {
  readonly db: SqliteDatabase;
  readonly leasedBy: string;
  #o: StoreConfig;
  #sql: QueueStatements;
  #frontier = 0;
  #lastRescan = 0;
  /** When the earliest row this store sent back for a retry becomes ready: rescan then. */
  #rescanAt = Infinity;
  /** This store's leases with rows in flight, by id. */
  #mine = new Map<number, OwnLease>();
  #claimTx: (n: number, extra: number, extraBytes: number, now: number) => ClaimedRow[];
  #ackTx: (ok: number[], leases: number[], failures: Failure[], now: number) => AckCounts;

  constructor(db: SqliteDatabase, options: StoreConfig, leasedBy: string, useDoneIndex: boolean) {
    this.db = db;
    this.#o = options;
    this.leasedBy = leasedBy;
    this.#sql = prepareQueueStatements(db, options.table, useDoneIndex);
    this.#claimTx = db.transaction((n: number, extra: number, extraBytes: number, now: number) => this.#claim(n, extra, extraBytes, now));
    this.#ackTx = db.transaction((ok: number[], leases: number[], failures: Failure[], now: number) => this.#ack(ok, leases, failures, now));
  }

  /** Leases up to `n` ready rows (then up to `extra` more within `extraBytes`), in id order, in one IMMEDIATE transaction. */
  claim(n: number, extra = 0, extraBytes = Infinity, now = Date.now()): ClaimedRow[] {
    if (n + extra <= 0) return [];
    return (this.#claimTx as unknown as { immediate: (n: number, e: number, b: number, now: number) => ClaimedRow[] }).immediate(n, extra, extraBytes, now);
  }

  /**
   * Applies acks in one IMMEDIATE transaction: `ok` ids are deleted (or marked done), failures go
   * back to pending with a backoff or to the dead-letter table.
   */
  ack(ok: number[], leases: number[], failures: Failure[], now = Date.now()): AckCounts {
    if (ok.length === 0 && failures.length === 0) return { acked: 0, retried: 0, deadLettered: 0 };
    return (this.#ackTx as unknown as { immediate: (ok: number[], l: number[], f: Failure[], now: number) => AckCounts }).immediate(ok, leases, failures, now);
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
          this.#sql.release.run(r.id, r.attempts - 1, r.deliveries);
          this.#countOff(r.lease, 1);
        }
      })
      .immediate();
    // They are behind the scan position now.
    this.#rescanAt = Date.now();
  }

  /** Moves the end of these leases of this store to `leaseMs` from now (rows waiting in a buffer). */
  renew(leases: number[], now = Date.now()): void {
    const own = leases.filter((id) => this.#mine.has(id));
    if (own.length === 0) return;
    this.db
      .transaction(() => {
        for (const id of own) this.#sql.renewLease.run(now + this.#o.leaseMs, id, this.leasedBy);
      })
      .immediate();
  }

  /** Rows dead-lettered by claims (past maxDeliveries deliveries without an ack); read by stats. */
  deadAtClaim = 0;

  #claim(n: number, extra: number, extraBytes: number, now: number): ClaimedRow[] {
    if (this.#endExpired(now)) this.#rescanAt = now;
    const out: ClaimedRow[] = [];
    const budget = { bytes: extraBytes, largest: 0 };
    let rescanned = now - this.#lastRescan >= RESCAN_INTERVAL_MS || now >= this.#rescanAt;
    if (rescanned) this.#startRescan(now);
    let after = rescanned ? 0 : this.#frontier;
    const total = n + extra;
    while (out.length < total) {
      const want = this.#want(out.length, n, total, budget);
      if (want === 0) break;
      const { selected, lastId, full } = this.#take(after, want, n, now, out, budget);
      if (full) break;
      if (selected === want) {
        // Some were in flight elsewhere or poison rows: go on after them.
        after = lastId;
        continue;
      }
      // The rows after `after` ran out. Rows behind the scan position are looked for only when
      // some may have become ready there (a retry of this store came due, a lease expired, rows
      // were given back) or RESCAN_INTERVAL_MS passed: rescanning on every poll while every row
      // is in flight walked all of them each time, and starved a busy process of its CPU.
      if (rescanned || (now - this.#lastRescan < RESCAN_INTERVAL_MS && now < this.#rescanAt)) break;
      rescanned = true;
      this.#startRescan(now);
      after = 0;
    }
    return out;
  }

  // How many rows to read next: what the demand still needs, then prefetch in chunks sized so
  // that a chunk of the largest payload seen so far fits in what is left of the byte budget.
  #want(have: number, n: number, total: number, budget: { bytes: number; largest: number }): number {
    if (have < n) return n - have;
    if (budget.bytes === Infinity) return total - have;
    if (budget.bytes <= 0) return 0;
    const fit = budget.largest > 0 ? Math.max(1, Math.floor(budget.bytes / budget.largest)) : PREFETCH_CHUNK;
    return Math.min(total - have, fit);
  }

  #startRescan(now: number): void {
    this.#lastRescan = now;
    this.#rescanAt = Infinity;
  }

  // Ends the leases that ran out (whoever took them): the rows they held count one more
  // delivery without an ack and are claimable again. True if there were any.
  #endExpired(now: number): boolean {
    const expired = this.#sql.expired.all(now) as [number, number, number, number][];
    for (const [id, first, last, createdAt] of expired) {
      this.#sql.endDelivery.run(first, last, id, createdAt);
      this.#sql.dropLease.run(id);
      this.#mine.delete(id);
    }
    return expired.length > 0;
  }

  #take(after: number, want: number, n: number, now: number, out: ClaimedRow[], budget: { bytes: number; largest: number }): { selected: number; lastId: number; full: boolean } {
    const rows = this.#sql.select.all(after, now, want) as [number, string | Buffer, string | null, number, number, number, number][];
    if (rows.length === 0) return { selected: 0, lastId: after, full: false };
    const last = rows[rows.length - 1]![0];
    // Live leases past the scan start (none in the common case: this store's own are behind
    // its frontier, and no other process is claiming).
    const live = this.#sql.live.all(after) as LeaseRange[];
    const maxDeliveries = this.#o.maxDeliveries;
    let runFirst = -1;
    let runLast = -1;
    let runCount = 0;
    let full = false;
    let scanned = last;
    for (const [id, payload, metadata, attempts, deliveries, released, availableAt] of rows) {
      if (live.length > 0 && inFlight(live, id, released, availableAt)) {
        // Cut the lease here: it must not cover a row another lease holds.
        if (runCount > 0) this.#lease(runFirst, runLast, runCount, now, out);
        runCount = 0;
        continue;
      }
      if (deliveries >= maxDeliveries) {
        // Delivered maxDeliveries times and never acked (each time the process died or the
        // lease ran out): a row that kills its consumer. Dead-letter it instead of crashing
        // the consumer again.
        this.#sql.claimDeadCopy.run(`no ack after ${deliveries} deliveries (each time the process died or the lease ran out)`, now, id);
        this.#sql.deleteRow.run(id);
        this.deadAtClaim++;
        continue;
      }
      const size = payloadBytes(payload);
      if (out.length >= n) {
        // Prefetch: within the byte budget (the demand is always served).
        if (size > budget.bytes) {
          full = true;
          scanned = id - 1;
          break;
        }
        budget.bytes -= size;
      }
      if (size > budget.largest) budget.largest = size;
      if (runCount === 0) runFirst = id;
      runLast = id;
      runCount++;
      out.push({ id, payload, metadata, attempts: attempts + 1, deliveries, lease: 0 });
    }
    if (runCount > 0) this.#lease(runFirst, runLast, runCount, now, out);
    if (scanned > this.#frontier) this.#frontier = scanned;
    return { selected: rows.length, lastId: last, full };
  }

  // Records a lease for the last `count` rows of `out` (ids first..last) and stamps them with it.
  #lease(first: number, last: number, count: number, now: number, out: ClaimedRow[]): void {
    const id = Number(this.#sql.putLease.run(first, last, this.leasedBy, now + this.#o.leaseMs, now).lastInsertRowid);
    this.#mine.set(id, { id, open: count });
    for (let i = out.length - count; i < out.length; i++) out[i]!.lease = id;
  }

  // `count` rows delivered under `lease` are no longer in flight: drop it once none is. A lease
  // that is not (or no longer) this store's is left alone: it ended, and its rows went on.
  #countOff(lease: number, count: number): void {
    const own = this.#mine.get(lease);
    if (!own) return;
    own.open -= count;
    if (own.open <= 0) {
      this.#sql.dropLease.run(lease);
      this.#mine.delete(lease);
    }
  }

  #ack(ok: number[], leases: number[], failures: Failure[], now: number): AckCounts {
    let acked = 0;
    if (ok.length > 0) {
      // Acks come mostly as one run of consecutive ids: one range statement per run.
      for (let i = 1; i < ok.length; i++) {
        if (ok[i]! <= ok[i - 1]!) {
          [ok, leases] = sortedPairs(ok, leases);
          break;
        }
      }
      const markDone = this.#o.onSuccess === 'mark_done';
      let start = ok[0]!;
      let prev = start;
      for (let i = 1; i <= ok.length; i++) {
        const id = ok[i];
        if (id === prev + 1) {
          prev = id;
          continue;
        }
        // Processed, whichever delivery holds the row now.
        acked += markDone ? this.#sql.doneRange.run(now, this.leasedBy, start, prev).changes : this.#sql.deleteRange.run(start, prev).changes;
        start = prev = id!;
      }
      let lease = leases[0]!;
      let count = 0;
      for (let i = 0; i < leases.length; i++) {
        if (leases[i] !== lease) {
          this.#countOff(lease, count);
          lease = leases[i]!;
          count = 0;
        }
        count++;
      }
      this.#countOff(lease, count);
    }
    let retried = 0;
    let deadLettered = 0;
    for (const f of failures) {
      // The row's failure count as this delivery saw it.
      const failed = f.attempts - 1;
      if (f.retry && f.attempts < this.#o.maxAttempts) {
        const at = f.retryAt;
        const changed = this.#sql.retry.run(at, f.error, f.id, failed, f.deliveries).changes;
        if (changed > 0 && at < this.#rescanAt) this.#rescanAt = at;
        retried += changed;
      } else if (this.#sql.deadCopy.run(f.error, now, f.id, failed, f.deliveries).changes > 0) {
        this.#sql.deleteRow.run(f.id);
        deadLettered++;
      }
      this.#countOff(f.lease, 1);
    }
    return { acked, retried, deadLettered };
  }
}

/** True if a live lease holds the row: it covers the id, is newer than the row's release and the row was ready when it was taken. */
function inFlight(live: LeaseRange[], id: number, released: number, availableAt: number): boolean {
  for (const [first, last, lease, createdAt] of live) {
    if (first > id) return false;
    if (id <= last && lease > released && availableAt <= createdAt) return true;
  }
  return false;
}

/** `ids` sorted, each with its lease. */
function sortedPairs(ids: number[], leases: number[]): [number[], number[]] {
  const order = ids.map((_, i) => i).sort((a, b) => ids[a]! - ids[b]!);
  return [order.map((i) => ids[i]!), order.map((i) => leases[i] ?? 0)];
}
