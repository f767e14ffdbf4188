import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './connection.js';
import { quoteIdentifier } from './options.js';

/**
 * The prepared statements of queue mode on one connection (the rules they implement are stated
 * in queue-store.ts). Names pass quoteIdentifier before any SQL is built from them.
 */
export interface QueueStatements {
  /** (after id, now, limit) → [id, payload, metadata, attempts, deliveries, released_lease, available_at] */
  select: Statement;
  /** (now) → [lease id, first_id, last_id, created_at] of the leases that ran out. */
  expired: Statement;
  /** (first, last, lease id, lease created_at): the rows that lease delivered count a delivery without an ack. */
  endDelivery: Statement;
  dropLease: Statement;
  /** (after id) → [first_id, last_id, lease id, created_at] of live leases that may cover rows after it. */
  live: Statement;
  /** (first, last, leased_by, lease_until, created_at) */
  putLease: Statement;
  /** (lease_until, lease id, leased_by) */
  renewLease: Statement;
  deleteRange: Statement;
  doneRange: Statement;
  /** (available_at, error, id, attempts, deliveries): a failure sent back, if the row is still this delivery's. */
  retry: Statement;
  /** (error, now, id, attempts, deliveries): a failure past maxAttempts, if the row is still this delivery's. */
  deadCopy: Statement;
  /** (reason, now, id): a row past maxDeliveries deliveries without an ack. */
  claimDeadCopy: Statement;
  deleteRow: Statement;
  /** (id, attempts, deliveries): a prefetched row given back. */
  release: Statement;
}

/** Prepares the statements of queue mode for `table` (`<table>_dead`, `<table>_leases`). */
export function prepareQueueStatements(db: SqliteDatabase, table: string, useDoneIndex: boolean): QueueStatements {
  const t = quoteIdentifier(table, 'table');
  const dead = quoteIdentifier(`${table}_dead`, 'table');
  const leases = quoteIdentifier(`${table}_leases`, 'table');
  const indexed = useDoneIndex ? ` INDEXED BY ${quoteIdentifier(`${table}_pending`, 'table')}` : '';
  // The newest lease ever taken on this queue: a row given back is released from it and all before.
  const newest = `coalesce((SELECT seq FROM sqlite_sequence WHERE name = '${table}_leases'), 0)`;
  // A delivery is identified by the row's counts as it saw them: an ended delivery moves one of them.
  const sameDelivery = 'id = ? AND attempts = ? AND deliveries = ? AND done_at IS NULL';
  return {
    select: db.prepare(`SELECT id, payload, metadata, attempts, deliveries, released_lease, available_at FROM ${t}${indexed} WHERE id > ? AND done_at IS NULL AND available_at <= ? ORDER BY id LIMIT ?`).raw(true),
    expired: db.prepare(`SELECT id, first_id, last_id, created_at FROM ${leases} WHERE lease_until < ?`).raw(true),
    // Rows of the range the lease did not deliver: given back since (released_lease), or not
    // ready when it was taken (available_at after its created_at; a claim skips those).
    endDelivery: db.prepare(`UPDATE ${t} SET deliveries = deliveries + 1 WHERE id BETWEEN ? AND ? AND released_lease < ? AND available_at <= ? AND done_at IS NULL`),
    dropLease: db.prepare(`DELETE FROM ${leases} WHERE id = ?`),
    live: db.prepare(`SELECT first_id, last_id, id, created_at FROM ${leases} WHERE last_id > ? ORDER BY first_id`).raw(true),
    putLease: db.prepare(`INSERT INTO ${leases} (first_id, last_id, leased_by, lease_until, created_at) VALUES (?, ?, ?, ?, ?)`),
    renewLease: db.prepare(`UPDATE ${leases} SET lease_until = ? WHERE id = ? AND leased_by = ?`),
    deleteRange: db.prepare(`DELETE FROM ${t} WHERE id BETWEEN ? AND ?`),
    doneRange: db.prepare(`UPDATE ${t} SET done_at = ?, leased_by = ? WHERE id BETWEEN ? AND ? AND done_at IS NULL`),
    retry: db.prepare(`UPDATE ${t} SET available_at = ?, last_error = ?, attempts = attempts + 1, released_lease = ${newest} WHERE ${sameDelivery}`),
    deadCopy: db.prepare(
      `INSERT OR REPLACE INTO ${dead} (id, payload, metadata, attempts, deliveries, last_error, created_at, failed_at)
       SELECT id, payload, metadata, attempts + 1, deliveries, ?, created_at, ? FROM ${t} WHERE ${sameDelivery}`,
    ),
    claimDeadCopy: db.prepare(
      `INSERT OR REPLACE INTO ${dead} (id, payload, metadata, attempts, deliveries, last_error, created_at, failed_at)
       SELECT id, payload, metadata, attempts, deliveries, ? || coalesce('; the last failure: ' || last_error, ''), created_at, ? FROM ${t} WHERE id = ?`,
    ),
    deleteRow: db.prepare(`DELETE FROM ${t} WHERE id = ?`),
    release: db.prepare(`UPDATE ${t} SET released_lease = ${newest} WHERE ${sameDelivery}`),
  };
}
