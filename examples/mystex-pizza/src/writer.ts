/**
 * The batch writes, Act II and III of the seed, over a `Repo` from `@throughway/workers` (SQLite or
 * Postgres alike). Kept apart from the handler module so that tests can drive the placeholder/upsert
 * race directly, batch by batch, in any order.
 */
import { expectCount, timestamps, type Repo, type Timestamps } from '@throughway/workers';
import type { CustomerEntry, OrderEntry } from './decode.js';

export interface Tables {
  customers: string;
  orders: string;
}

export interface OrdersWritten {
  /** Orders inserted; the rest of the batch were exact repeats (redeliveries) of stored orders. */
  inserted: number;
  /** Placeholder customers created for orders that arrived before their customer. */
  placeholders: number;
}

/**
 * Deduplicates by id (last one wins) and sorts by id. Postgres rejects an upsert that touches one
 * row twice in a statement ("ON CONFLICT DO UPDATE command cannot affect row a second time"), and a
 * redelivery can put the same event twice in one batch. Sorting makes every transaction take row
 * locks in the same order, so two batch workers writing overlapping customers cannot deadlock.
 */
function byId<T extends { id: string }>(entries: readonly T[]): T[] {
  const map = new Map<string, T>();
  for (const e of entries) map.set(e.id, e);
  return [...map.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Customers as upserts: a row a placeholder holds gets the real data (name, email,
 * placeholder = false), replacing every column but the primary key, as the seed does with
 * `on_conflict: :replace_all_except_primary_key`. A redelivered customer.created rewrites the same
 * values. Every entry must count (inserted or updated), or the batch fails, as in the seed.
 */
export async function writeCustomers(repo: Repo, tables: Tables, customers: readonly CustomerEntry[], ts: Timestamps = timestamps()): Promise<number> {
  const entries = byId(customers).map((c) => ({ id: c.id, name: c.name, email: c.email, placeholder: false, ...ts }));
  const result = await repo.insertAll(tables.customers, entries, { onConflict: 'replace_all_except_primary_key', conflictTarget: ['id'] });
  expectCount(result, entries, `upsert into ${tables.customers}`);
  return result.count;
}

/**
 * Orders, in one transaction with the placeholders they need.
 *
 * The seed inserts the placeholder customer in `handle_message`, one row per order, from the
 * processors. Here it happens in the batch worker, in the same transaction as the orders, for two
 * reasons: SQLite has one writer per file, so inserts from every processor thread would contend
 * with the batch worker for the write lock (and processors would each need a connection); and in
 * one transaction the placeholder and its order commit together, so a crash can never leave an
 * order's placeholder without the order or the reverse. The race the seed describes is unchanged:
 * a placeholder insert does nothing when the customer exists, and the customer upsert fills in a
 * placeholder that won.
 */
export async function writeOrders(repo: Repo, tables: Tables, orders: readonly OrderEntry[], ts: Timestamps = timestamps()): Promise<OrdersWritten> {
  const entries = byId(orders).map((o) => ({ id: o.id, customer_id: o.customer_id, amount: o.amount, ...ts }));
  const customerIds = [...new Set(entries.map((o) => o.customer_id))].sort();
  const placeholders = customerIds.map((id) => ({ id, placeholder: true, ...ts }));
  return repo.transaction(async (tx) => {
    const created = await tx.insertAll(tables.customers, placeholders, { onConflict: 'nothing', conflictTarget: ['id'] });
    // Exact repeats are redeliveries of orders already stored: skipped, not counted, not failed.
    const inserted = await tx.insertAll(tables.orders, entries, { onConflict: 'nothing', conflictTarget: ['id'] });
    return { inserted: inserted.count, placeholders: created.count };
  });
}
