/**
 * What a handler module imports for exactly-once effects (`@throughway/sqlite-producer/handler`).
 * It runs in the batch worker, on a better-sqlite3 connection of the worker's own, and never
 * imports the producer.
 */
import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import { Message, ThroughwayError, sqliteRepo, type Repo, type ThroughwayMessage } from '@throughway/workers';
import { describeValue } from '@throughway/workers/internal';
import { invalid, ownTableName, quoteIdentifier } from './options.js';

/** Options of {@link ackInTransaction}: must match the queue's. */
export interface AckInTransactionOptions {
  /** The queue table. Default `'throughway_events'`. */
  table?: string;
  /** The queue's `onSuccess`. Default `'delete'`. */
  onSuccess?: 'delete' | 'mark_done';
}

/** The reason a message fails with when its delivery ended before the transaction could ack it. */
export const LEASE_LOST = 'lease lost: the row was delivered again (its lease ran out) or acked elsewhere before this batch committed; nothing of it was written here';

interface ConnectionState {
  repo: Repo;
  /** `${table}\0${onSuccess}` → the ack statement. */
  statements: Map<string, Database.Statement>;
}

const connections = new WeakMap<object, ConnectionState>();

/** Who acked a row in mark_done mode (`leased_by`): this process, and that it was in the sink's transaction. */
const ACKED_BY = `${hostname()}:${process.pid}:transaction`;

function stateOf(db: Database.Database): ConnectionState {
  let state = connections.get(db);
  if (!state) connections.set(db, (state = { repo: sqliteRepo(db), statements: new Map() }));
  return state;
}

// The ack of one delivery: the row is deleted (or marked done) only if it is still in the
// delivery the message came from. A delivery is identified by the row's two counts as the claim
// saw them (queue-store.ts): whatever ends a delivery moves one of them (a failure `attempts`; a
// lease that ran out `deliveries`, before any claim may take the row again), so a row that was
// claimed again elsewhere does not match, and neither does one already acked.
function ackStatement(state: ConnectionState, db: Database.Database, table: string, onSuccess: 'delete' | 'mark_done'): Database.Statement {
  const key = `${table}\u0000${onSuccess}`;
  let statement = state.statements.get(key);
  if (!statement) {
    const t = quoteIdentifier(table, 'ackInTransaction.options.table');
    const same = 'id = ? AND attempts = ? AND deliveries = ? AND done_at IS NULL';
    statement =
      onSuccess === 'delete'
        ? db.prepare(`DELETE FROM ${t} WHERE ${same}`)
        : db.prepare(`UPDATE ${t} SET done_at = ?, leased_by = ? WHERE ${same}`);
    state.statements.set(key, statement);
  }
  return statement;
}

interface Delivery {
  id: number;
  /** Failures before this delivery. */
  failed: number;
  deliveries: number;
}

function deliveryOf(m: ThroughwayMessage, index: number): Delivery {
  const meta = m?.metadata as { id?: unknown; attempts?: unknown; deliveries?: unknown } | undefined;
  if (!Number.isSafeInteger(meta?.id) || !Number.isSafeInteger(meta?.attempts) || !Number.isSafeInteger(meta?.deliveries)) {
    throw new ThroughwayError(
      'ERR_THROUGHWAY_INVALID_ARGUMENT',
      `ackInTransaction: message ${index} has no queue delivery in its metadata (got id ${describeValue(meta?.id)}, attempts ${describeValue(meta?.attempts)}, deliveries ${describeValue(meta?.deliveries)}); it must come from sqliteQueue with metadata: true`,
      { details: { index } },
    );
  }
  return { id: meta!.id as number, failed: (meta!.attempts as number) - 1, deliveries: meta!.deliveries as number };
}

/**
 * Exactly-once effects when the queue and the sink are one SQLite file: runs `write` and the ack
 * of the batch's queue rows in one transaction (`BEGIN IMMEDIATE` on `db`). First it deletes (or
 * marks done) the rows still in the delivery each message came from, then calls `write` with only
 * those messages, then commits. A crash at any point leaves both or neither: a row acked this way
 * is never delivered again, even after a kill between the commit and the main thread's
 * bookkeeping. A row whose delivery ended meanwhile (its lease ran out and a claim took it back)
 * is not written here, and its message fails with {@link LEASE_LOST}; that failure changes nothing
 * in the queue (the row belongs to its next delivery). A throw in `write` rolls both back and
 * fails the batch as usual (the rows are retried).
 *
 * Returns the messages to return from `handleBatch`: the acked ones carry `configureAck({ committed:
 * true })`, so the main thread writes nothing more for them.
 *
 * `db` is a better-sqlite3 connection to the queue's file, opened by the batch worker in `setup`
 * (WAL, and a busy timeout: `new Database(file, { timeout: 10000 })`); `write` gets a `Repo` bound
 * to the transaction. The messages need their metadata (`sqliteQueue({ metadata: true })`, the
 * default): it carries the row id and the delivery's counts.
 *
 * @example
 * import Database from 'better-sqlite3'
 * import { definePipeline } from '@throughway/workers'
 * import { ackInTransaction } from '@throughway/sqlite-producer/handler'
 *
 * export default definePipeline<{ file: string; db?: Database.Database }>({
 *   setup(context, { kind }) {
 *     if (kind !== 'batcher') return context
 *     const db = new Database(context.file, { timeout: 10000 })
 *     db.pragma('journal_mode = WAL')
 *     return { ...context, db }
 *   },
 *   handleMessage: (_p, m) => Message.putData(m, JSON.parse(m.data as string)),
 *   handleBatch: (_b, messages, _info, { db }) =>
 *     ackInTransaction(db!, messages, (repo, owned) => repo.insertAll('orders', owned.map((m) => m.data)), { table: 'orders_queue' }),
 *   teardown: (context) => context.db?.close(),
 * })
 */
export async function ackInTransaction<M extends ThroughwayMessage>(
  db: Database.Database,
  messages: M[],
  write: (repo: Repo, owned: M[]) => unknown,
  options: AckInTransactionOptions = {},
): Promise<M[]> {
  if (db === null || typeof db !== 'object' || typeof (db as { prepare?: unknown }).prepare !== 'function' || typeof (db as { exec?: unknown }).exec !== 'function') {
    invalid('ackInTransaction.db', 'a better-sqlite3 Database', db);
  }
  if (!Array.isArray(messages)) invalid('ackInTransaction.messages', 'an array of messages', messages);
  if (typeof write !== 'function') invalid('ackInTransaction.write', 'a function', write);
  if (options === null || typeof options !== 'object') invalid('ackInTransaction.options', 'an object', options);
  const table = ownTableName(options.table, 'ackInTransaction.options.table', 'throughway_events');
  const onSuccess = options.onSuccess ?? 'delete';
  if (onSuccess !== 'delete' && onSuccess !== 'mark_done') invalid('ackInTransaction.options.onSuccess', "'delete' or 'mark_done'", options.onSuccess);
  const deliveries = messages.map(deliveryOf);
  if (messages.length === 0) return messages;
  const state = stateOf(db);
  const ack = ackStatement(state, db, table, onSuccess);
  const owned = new Array<boolean>(messages.length).fill(false);
  await state.repo.transaction(async (tx) => {
    // BEGIN IMMEDIATE holds the write lock from here to the commit: no claim, expiry or other ack
    // of these rows can come in between the check and the write.
    const now = Date.now();
    for (let i = 0; i < deliveries.length; i++) {
      const d = deliveries[i]!;
      const changed = onSuccess === 'delete' ? ack.run(d.id, d.failed, d.deliveries).changes : ack.run(now, ACKED_BY, d.id, d.failed, d.deliveries).changes;
      owned[i] = changed > 0;
    }
    const mine = messages.filter((_m, i) => owned[i]);
    if (mine.length > 0) await write(tx, mine);
  });
  return messages.map((m, i) => (owned[i] ? Message.configureAck(m, { committed: true }) : Message.failed(m, LEASE_LOST)));
}
