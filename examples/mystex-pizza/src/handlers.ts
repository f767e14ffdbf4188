/**
 * The fulfillment pipeline's callbacks (the seed's `MystexPizza.FulfillmentPipeline`). Loaded in
 * every processor thread and batch worker thread, so it holds no state the main thread needs.
 *
 * Routing, as in the seed:
 * - `customer.created` / `order.created` → batcher `insert_all`, batch key 'customers' / 'orders';
 * - other types → batcher `default`, whose `handleBatch` writes nothing: they are acked with
 *   their batch. (`ackImmediately` would ack each one in its own call to the queue, one
 *   transaction per event; batching the acks is what keeps the queue fast.)
 * - malformed events fail with a reason code and `retry: false`, so the queue dead-letters them at
 *   once instead of retrying what can never succeed.
 */
import type pg from 'pg';
import type Database from 'better-sqlite3';
import { Message, definePipeline, postgresRepo, sqliteRepo, timestamps, type Repo, type ThroughwayMessage } from '@throughway/workers';
import { decodeEvent, failureMessage, type CustomerEntry, type OrderEntry } from './decode.js';
import { connectPostgres, openSqlite, tableName, type DatabaseTarget } from './database.js';
import { writeCustomers, writeOrders, type Tables } from './writer.js';

/** What the main thread passes (plain data: it is copied into every thread). */
export interface PipelineContext {
  database: DatabaseTarget;
  /**
   * `--source postgres`: the queue table (in the same schema as the tables); each insert_all batch
   * commits its rows and the ack of its events in one transaction.
   */
  exactlyOnceQueue?: string;
}

/** What a batch worker of `insert_all` holds for its life after `setup`. */
interface WriterContext extends PipelineContext {
  repo: Repo;
  /** Postgres only: the connection, for ackInTransaction. */
  client?: pg.Client;
  /** `--source postgres` only: loaded in setup, as only that batch worker needs it. */
  ackInTransaction?: typeof import('@throughway/postgres-producer/handler').ackInTransaction;
  tables: Tables;
  close: () => Promise<void> | void;
}

export const BATCHER_INSERT = 'insert_all';
export const BATCHER_IGNORED = 'default';
export const KEY_CUSTOMERS = 'customers';
export const KEY_ORDERS = 'orders';

function toCustomer(m: ThroughwayMessage): CustomerEntry {
  const [id, name, email] = JSON.parse(m.data as string) as [string, string, string];
  return { id, name, email };
}

function toOrder(m: ThroughwayMessage): OrderEntry {
  const [id, customer_id, amount] = JSON.parse(m.data as string) as [string, string, number];
  return { id, customer_id, amount };
}

export default definePipeline<PipelineContext>({
  // Only the insert_all batch worker needs a connection; processors decode and route, nothing more.
  async setup(context, info) {
    if (info.kind !== 'batcher' || info.batcher !== BATCHER_INSERT) return;
    const target = context.database;
    const tables = { customers: tableName(target, 'customers'), orders: tableName(target, 'orders') };
    if (target.kind === 'sqlite') {
      const db: Database.Database = openSqlite(target.path);
      return { ...context, repo: sqliteRepo(db), tables, close: () => void db.close() } as WriterContext;
    }
    const client: pg.Client = await connectPostgres(target);
    // Loaded here, not at the top: every thread imports this module and no other needs it (nor
    // the @throughway/workers internals it brings, ~65 ms of start-up a thread).
    const ackInTransaction = context.exactlyOnceQueue ? (await import('@throughway/postgres-producer/handler')).ackInTransaction : undefined;
    return { ...context, repo: postgresRepo(client), client, ackInTransaction, tables, close: () => client.end() } as WriterContext;
  },

  handleMessage(_processor, message) {
    const decoded = decodeEvent(message.data);
    switch (decoded.kind) {
      // Entries travel to the batch worker as short JSON arrays: a string crosses the threads as
      // flat bytes, an object through the structured-clone serializer (several times slower).
      case 'customer': {
        const { id, name, email } = decoded.entry;
        Message.putData(message, JSON.stringify([id, name, email]));
        return Message.putBatchKey(Message.putBatcher(message, BATCHER_INSERT), KEY_CUSTOMERS);
      }
      case 'order': {
        const { id, customer_id, amount } = decoded.entry;
        Message.putData(message, JSON.stringify([id, customer_id, amount]));
        return Message.putBatchKey(Message.putBatcher(message, BATCHER_INSERT), KEY_ORDERS);
      }
      case 'ignored':
        // Left on the default batcher, as in the seed. Nothing of it is needed downstream, so the
        // payload is dropped here instead of being carried to the batch worker.
        return Message.putData(message, '');
      case 'malformed':
        Message.configureAck(message, { retry: false });
        return Message.failed(message, failureMessage(decoded.reason, decoded.detail));
    }
  },

  async handleBatch(batcher, messages, batchInfo, context) {
    if (batcher !== BATCHER_INSERT) return messages;
    const { repo, tables, client, exactlyOnceQueue, ackInTransaction } = context as WriterContext;
    // One instant for the whole batch, as the seed's timestamps/1 does per batch.
    const ts = timestamps();
    const write = async (into: Repo, batch: ThroughwayMessage[]): Promise<void> => {
      if (batchInfo.batchKey === KEY_CUSTOMERS) await writeCustomers(into, tables, batch.map(toCustomer), ts);
      else if (batchInfo.batchKey === KEY_ORDERS) await writeOrders(into, tables, batch.map(toOrder), ts);
      else throw new Error(`insert_all has no table for batch key ${JSON.stringify(batchInfo.batchKey)}`);
    };
    if (exactlyOnceQueue && client && ackInTransaction) return ackInTransaction(client, messages, write, { table: exactlyOnceQueue });
    await write(repo, messages);
    return messages;
  },

  async teardown(context) {
    await (context as Partial<WriterContext>).close?.();
  },
});
