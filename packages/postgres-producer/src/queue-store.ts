import type pg from 'pg';
import { distinctRuns, leaseMap, leaseMatch, queueNames, type QueueNames } from './names.js';

/**
 * The SQL of queue mode, one statement per operation, none holding a transaction open between
 * round trips (a long transaction would pin the MVCC horizon and keep vacuum from removing the
 * queue's dead tuples).
 *
 * Claim: Oban's and pg-boss's idea — pick up to N claimable rows with `FOR UPDATE SKIP LOCKED`
 * in a subquery and lease them in the same statement. The lease is `available_at` moved to the end of
 * the lease (a visibility timeout: the row comes back by itself if nobody acks it) plus a random
 * `lease` token. Every later write to the row matches `(id, lease)`, so a late ack from a lease
 * that ran out and was claimed again elsewhere changes nothing (it is counted as stale).
 *
 * Ack: one statement per group of acks (River's batched completer): the ids travel as an array,
 * each id's lease token (and a failure's kind, delay and error) in a jsonb object keyed by id, and
 * data-modifying CTEs delete (or mark) the successes, put retryable failures back with a backoff
 * and move the rest to `<table>_dead` with their last error. No statement joins the queue table
 * with its input: the rows are found by `id = ANY($ids)` (see leaseMatch in names.ts).
 */

/** A row as a claim returns it. */
export interface ClaimedRow {
  id: number;
  lease: number;
  payload: string;
  metadata: Record<string, unknown> | null;
  /** Failed deliveries before this one. */
  attempts: number;
  /** Claims of this row, this one included. */
  deliveries: number;
}

/** What one ack statement does to a row. */
export const AckKind = {
  Ok: 0,
  /** A failure: retried with a backoff, or dead-lettered once `attempts` reaches maxAttempts. */
  Failed: 1,
  /** A failure that must not be retried (`configureAck(m, { retry: false })`). */
  Dead: 2,
  /** Delivered maxDeliveries times with no ack: dead-lettered without counting a failure. */
  Undelivered: 3,
} as const;
export type AckKind = (typeof AckKind)[keyof typeof AckKind];

export interface AckEntry {
  id: number;
  lease: number;
  kind: AckKind;
  error: string | null;
  delayMs: number;
}

export interface AckCounts {
  acked: number;
  retried: number;
  deadLettered: number;
  /** Acks whose `(id, lease)` matched no row: the lease had run out and the row was claimed again (or acked). */
  stale: number;
}

/**
 * `synchronous_commit = off` for the statement's own transaction (`set_config(..., true)` is
 * `SET LOCAL`): its commit does not wait for the WAL flush (measured here: 0.2-0.5 against
 * 2.6-3.9 ms a commit). The connection's own setting is untouched, so a caller's pool is not
 * changed. Why losing such a commit in a Postgres crash is safe: see the README's `synchronousCommit`.
 */
const ASYNC_COMMIT = `(SELECT set_config('synchronous_commit', 'off', true))`;

/**
 * Planner settings for the claim's own transaction: the ready rows are read through the claim
 * index in order and the scan stops at the limit. A queue table vacuumed while empty has
 * `reltuples = 0`, and the planner then read every ready row with a bitmap scan and sorted them
 * (to disk) on each claim: 64 ms against 0.8 ms to find 1,500 of 50,000 rows (EXPLAIN ANALYZE),
 * claims that grew with the backlog, and bench rounds 5-10x slower than the next (2-5k against
 * 17-60k rows/s). With sorts, bitmap and sequential scans off, the ordered index scan is the only
 * plan left; the settings end with the claim's transaction.
 */
const CLAIM_PLAN = `set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)`;

export class QueueStore {
  readonly pool: pg.Pool;
  readonly names: QueueNames;
  readonly #claimSql: string;
  readonly #claimSettings: string;
  readonly #okSql: string;
  readonly #mixedSql: string;
  readonly #releaseSql: string;
  readonly #maxAttempts: number;

  constructor(pool: pg.Pool, table: string, options: { onSuccess: 'delete' | 'mark_done'; maxAttempts: number; metadata: boolean; synchronousCommit: boolean }) {
    this.pool = pool;
    this.#maxAttempts = options.maxAttempts;
    const n = (this.names = queueNames(table));
    const q = n.q;
    // An uncorrelated subquery: evaluated once per statement, before the commit it applies to.
    const fast = options.synchronousCommit ? '' : ` AND ${ASYNC_COMMIT} IS NOT NULL`;
    // `id = ANY(ARRAY(subquery))`, not a join with the CTE: the planner estimates the join at the
    // whole table and hashes it with a sequential scan on every claim (82 against 28 ms for 1000
    // of 30,000 rows, measured with EXPLAIN ANALYZE); an array of ids is an index scan.
    // The values are inlined (see claim()): $1 limit, $2 lease, $3 leased_by, $4 leaseMs.
    this.#claimSql = `UPDATE ${q} AS q SET lease = $2, leased_by = $3, deliveries = q.deliveries + 1,
        available_at = now() + $4 * interval '1 millisecond'
      WHERE q.id = ANY (ARRAY (
        SELECT id FROM ${q} WHERE available_at <= now() AND done_at IS NULL
        ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
      ))
      RETURNING q.id::float8 AS id, q.payload, ${options.metadata ? 'q.metadata' : 'NULL::jsonb AS metadata'}, q.attempts, q.deliveries`;
    this.#claimSettings = `SELECT ${CLAIM_PLAN}${options.synchronousCommit ? '' : `, set_config('synchronous_commit', 'off', true)`}; `;
    // $1 every id of the group, $2 {id: lease} of every id, $3 the successful ids, $4 {id: [kind,
    // delay ms, error]} of the failures, $5 maxAttempts.
    // (Only successes: $1 their ids, $2 {id: lease}.)
    const match = leaseMatch('$1', '$2');
    const okOf = (okMatch: string) =>
      options.onSuccess === 'delete'
        ? `DELETE FROM ${q} AS q WHERE ${okMatch}${fast} RETURNING q.id`
        : `UPDATE ${q} AS q SET done_at = now(), lease = NULL WHERE ${okMatch}${fast} RETURNING q.id`;
    const ok = okOf(leaseMatch('$3', '$2'));
    this.#okSql = `WITH ok AS (${okOf(match)}) SELECT count(*)::int AS acked FROM ok`;
    const failure = `($4::jsonb -> q.id::text)`;
    const kind = `(${failure} ->> 0)::int`;
    this.#mixedSql = `WITH ok AS (${ok}),
      retry AS (
        UPDATE ${q} AS q SET attempts = q.attempts + 1, lease = NULL, leased_by = NULL, last_error = ${failure} ->> 2,
          available_at = now() + (${failure} ->> 1)::int * interval '1 millisecond'
        WHERE ${match} AND ${kind} = ${AckKind.Failed} AND q.attempts + 1 < $5${fast}
        RETURNING q.id
      ),
      gone AS (
        DELETE FROM ${q} AS q
        WHERE ${match} AND ${kind} > ${AckKind.Ok} AND (${kind} > ${AckKind.Failed} OR q.attempts + 1 >= $5)${fast}
        RETURNING q.id, q.payload, q.metadata, q.attempts + CASE WHEN ${kind} = ${AckKind.Undelivered} THEN 0 ELSE 1 END AS attempts, q.deliveries, ${failure} ->> 2 AS error, q.created_at
      ),
      dead AS (
        INSERT INTO ${n.dead} (id, payload, metadata, attempts, deliveries, last_error, created_at)
        SELECT id, payload, metadata, attempts, deliveries, error, created_at FROM gone
        ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, metadata = excluded.metadata, attempts = excluded.attempts,
          deliveries = excluded.deliveries, last_error = excluded.last_error, failed_at = now()
        RETURNING id
      )
      SELECT (SELECT count(*) FROM ok)::int AS acked, (SELECT count(*) FROM retry)::int AS retried, (SELECT count(*) FROM dead)::int AS dead`;
    this.#releaseSql = `UPDATE ${q} AS q SET lease = NULL, leased_by = NULL, deliveries = q.deliveries - 1, available_at = now()
      WHERE ${match}${fast}`;
  }

  /**
   * Leases up to `limit` claimable rows under `lease` for `leaseMs`, in id order. One round trip
   * of two statements in one implicit transaction: the planner settings of CLAIM_PLAN (local to
   * it), then the claim, with its values inlined (the simple protocol takes no parameters; they
   * are integers and `leasedBy`, quoted).
   */
  async claim(limit: number, lease: number, leasedBy: string, leaseMs: number): Promise<ClaimedRow[]> {
    const values = [String(Math.trunc(limit)), String(Math.trunc(lease)), `'${leasedBy.replace(/'/g, "''")}'`, String(Math.trunc(leaseMs))];
    const sql = this.#claimSettings + this.#claimSql.replace(/\$([1-4])/g, (_m, i: string) => values[Number(i) - 1]!);
    const results = (await this.pool.query(sql)) as unknown as pg.QueryResult<ClaimedRow>[];
    const rows = results[results.length - 1]!.rows;
    // RETURNING follows the UPDATE's order, not the CTE's ORDER BY.
    rows.sort((a, b) => a.id - b.id);
    for (const r of rows) r.lease = lease;
    return rows;
  }

  /** Writes a group of acks in one statement (one more per repeat of an id in the group: rare). */
  async ack(entries: readonly AckEntry[]): Promise<AckCounts> {
    const runs = distinctRuns(entries);
    const counts = await this.#ackDistinct(runs[0] ?? []);
    for (let i = 1; i < runs.length; i++) {
      const more = await this.#ackDistinct(runs[i]!);
      counts.acked += more.acked;
      counts.retried += more.retried;
      counts.deadLettered += more.deadLettered;
      counts.stale += more.stale;
    }
    return counts;
  }

  async #ackDistinct(entries: readonly AckEntry[]): Promise<AckCounts> {
    const n = entries.length;
    if (n === 0) return { acked: 0, retried: 0, deadLettered: 0, stale: 0 };
    const [ids, leases] = leaseMap(entries);
    const ok: number[] = [];
    const failures: Record<string, [number, number, string | null]> = {};
    let onlyOk = true;
    for (const e of entries) {
      if (e.kind === AckKind.Ok) ok.push(e.id);
      else {
        onlyOk = false;
        failures[e.id] = [e.kind, Math.round(e.delayMs), e.error];
      }
    }
    if (onlyOk) {
      const { rows } = await this.pool.query<{ acked: number }>({ name: `tw-ack-${this.names.table}`, text: this.#okSql, values: [ids, leases] });
      const acked = rows[0]!.acked;
      return { acked, retried: 0, deadLettered: 0, stale: n - acked };
    }
    const { rows } = await this.pool.query<{ acked: number; retried: number; dead: number }>({
      name: `tw-ack-mixed-${this.names.table}`,
      text: this.#mixedSql,
      values: [ids, leases, ok, JSON.stringify(failures), this.#maxAttempts],
    });
    const r = rows[0]!;
    return { acked: r.acked, retried: r.retried, deadLettered: r.dead, stale: n - r.acked - r.retried - r.dead };
  }

  /** Gives leased rows back (claimable at once, the delivery not counted). */
  async release(rows: readonly { id: number; lease: number }[]): Promise<void> {
    for (const run of distinctRuns(rows)) await this.pool.query(this.#releaseSql, leaseMap(run));
  }
}
