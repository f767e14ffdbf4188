/**
 * What a handler module imports for exactly-once effects (`@throughway/postgres-producer/handler`).
 * It runs in the batch worker and never imports the coordinator.
 */
import type pg from 'pg';
import { Message, ThroughwayError, postgresRepo, type Repo, type ThroughwayMessage } from '@throughway/workers';
import { describeValue } from '@throughway/workers/internal';
import { distinctRuns, leaseMap, leaseMatch, queueNames } from './names.js';
import { invalid, tableName } from './options.js';

/** Options of {@link ackInTransaction}: must match the queue's. */
export interface AckInTransactionOptions {
  /** The queue table. Default `'throughway_events'`. */
  table?: string;
  /** The queue's `onSuccess`. Default `'delete'`. */
  onSuccess?: 'delete' | 'mark_done';
}

/** The reason a message fails with when its lease was lost before the transaction could ack it. */
export const LEASE_LOST = 'lease lost: the row was claimed again (or acked) elsewhere before this batch committed; nothing of it was written here';

const repos = new WeakMap<object, Repo>();
const sqlCache = new Map<string, string>();

function ackSql(table: string, onSuccess: 'delete' | 'mark_done'): string {
  const key = `${table}\u0000${onSuccess}`;
  let sql = sqlCache.get(key);
  if (!sql) {
    const { q } = queueNames(table);
    const match = leaseMatch('$1', '$2');
    sql =
      onSuccess === 'delete'
        ? `DELETE FROM ${q} AS q WHERE ${match} RETURNING q.id::float8 AS id, ($2::jsonb ->> q.id::text) AS lease`
        : `UPDATE ${q} AS q SET done_at = now(), lease = NULL WHERE ${match} RETURNING q.id::float8 AS id, ($2::jsonb ->> q.id::text) AS lease`;
    sqlCache.set(key, sql);
  }
  return sql;
}

function leaseOf(m: ThroughwayMessage, index: number): { id: number; lease: number } {
  const meta = m.metadata as { id?: unknown; lease?: unknown } | undefined;
  if (typeof meta?.id !== 'number' || typeof meta.lease !== 'number') {
    throw new ThroughwayError(
      'ERR_THROUGHWAY_INVALID_ARGUMENT',
      `ackInTransaction: message ${index} has no queue lease in its metadata (got id ${describeValue(meta?.id)}, lease ${describeValue(meta?.lease)}); it must come from postgresQueue with metadata: true`,
      { details: { index } },
    );
  }
  return { id: meta.id, lease: meta.lease };
}

/**
 * Exactly-once effects when the queue and the sink are one Postgres database: runs `write` and the
 * ack of the batch's queue rows in one transaction. First it deletes (or marks done) the rows
 * whose lease is still this delivery's, holding their row locks, then calls `write` with only the
 * messages whose rows it got, then commits. A crash at any point leaves both or neither: a row
 * acked this way is never delivered again, even after a kill between the commit and the main
 * thread's bookkeeping; a row whose lease was lost (claimed again elsewhere) is not written here,
 * and its message fails with {@link LEASE_LOST}. A throw in `write` rolls both back and fails the
 * batch as usual (the rows are retried).
 *
 * Returns the messages to return from `handleBatch`: the acked ones carry `configureAck({ committed:
 * true })`, so the main thread writes nothing more for them.
 *
 * `db` is a `pg.Client` (open it in `setup`) or a `pg.Pool` (a client is checked out per batch);
 * `write` gets a `Repo` bound to the transaction.
 *
 * @example
 * import { definePipeline } from '@throughway/workers'
 * import { ackInTransaction } from '@throughway/postgres-producer/handler'
 * import pg from 'pg'
 *
 * export default definePipeline<{ url: string; db?: pg.Client }>({
 *   async setup(context) {
 *     const db = new pg.Client(context.url)
 *     await db.connect()
 *     return { ...context, db }
 *   },
 *   handleMessage: (_p, m) => Message.putData(m, JSON.parse(m.data as string)),
 *   handleBatch: (_b, messages, _info, { db }) =>
 *     ackInTransaction(db!, messages, (repo, owned) => repo.insertAll('orders', owned.map((m) => m.data)), { table: 'orders_queue' }),
 * })
 */
export async function ackInTransaction<M extends ThroughwayMessage>(
  db: pg.ClientBase | pg.Pool,
  messages: M[],
  write: (repo: Repo, owned: M[]) => unknown,
  options: AckInTransactionOptions = {},
): Promise<M[]> {
  if (db === null || typeof db !== 'object' || typeof (db as { query?: unknown }).query !== 'function') invalid('ackInTransaction.db', 'a pg Client or Pool', db);
  if (!Array.isArray(messages)) invalid('ackInTransaction.messages', 'an array of messages', messages);
  if (typeof write !== 'function') invalid('ackInTransaction.write', 'a function', write);
  const table = tableName(options.table, 'ackInTransaction.options.table', 'throughway_events');
  const onSuccess = options.onSuccess ?? 'delete';
  if (onSuccess !== 'delete' && onSuccess !== 'mark_done') invalid('ackInTransaction.options.onSuccess', "'delete' or 'mark_done'", options.onSuccess);
  const leases = messages.map(leaseOf);
  if (messages.length === 0) return messages;
  const pooled = 'totalCount' in db;
  const client = pooled ? await (db as pg.Pool).connect() : (db as pg.ClientBase);
  // `id:lease` of each delivery acked here (a row delivered twice in one batch is acked once).
  const owned = new Set<string>();
  try {
    let repo = repos.get(client);
    if (!repo) repos.set(client, (repo = postgresRepo(client as pg.Client)));
    await repo.transaction(async (tx) => {
      // The row locks taken here are held to the commit: a claim elsewhere skips these rows, and a
      // claim that got there first has changed the lease, so they do not match.
      // One message per row in a batch; a repeated id (a row delivered twice) gets a statement of its own.
      for (const run of distinctRuns(leases)) {
        const { rows } = await client.query<{ id: number; lease: string }>(ackSql(table, onSuccess), leaseMap(run));
        for (const r of rows) owned.add(`${r.id}:${r.lease}`);
      }
      const mine = messages.filter((_m, i) => owned.has(`${leases[i]!.id}:${leases[i]!.lease}`));
      if (mine.length > 0) await write(tx, mine);
    });
  } finally {
    if (pooled) (client as pg.PoolClient).release();
  }
  return messages.map((m, i) => (owned.has(`${leases[i]!.id}:${leases[i]!.lease}`) ? Message.configureAck(m, { committed: true }) : Message.failed(m, LEASE_LOST)));
}
