/**
 * The consistency check: reads the final tables back and compares them with the generator's tally.
 * Every order's customer exists, no order is stored twice, every non-placeholder customer is
 * complete, the counts match, the rows' contents match (digests), and every malformed event, and
 * only those, is in the dead-letter table with its reason.
 */
import type { DatabaseTarget } from './database.js';
import { connectPostgres, openSqlite, tableName } from './database.js';
import { FAILURE_REASONS } from './decode.js';
import { customerDigestLine, fnv1a, orderDigestLine, type Tally } from './generator.js';

/** What the tables hold, as read back. */
export interface TableState {
  customers: number;
  realCustomers: number;
  placeholders: number;
  /** Non-placeholder customers lacking a name or an email (the schema's CHECK forbids them). */
  incompleteCustomers: number;
  orders: number;
  distinctOrders: number;
  ordersWithoutCustomer: number;
  amountSum: number;
  customerDigest: number;
  orderDigest: number;
}

/** What the queue holds at the end, from the producer's tables. */
export interface QueueState {
  /** Events not yet acked (pending, leased or waiting for a retry). */
  remaining: number;
  /** Dead letters by the reason code that starts their error ('other' for anything else). */
  deadLetters: Record<string, number>;
}

export interface CheckLine {
  name: string;
  ok: boolean;
  expected: string | number;
  actual: string | number;
}

export interface CheckResult {
  ok: boolean;
  lines: CheckLine[];
}

const COUNTS = (c: string, o: string): string => `
  SELECT
    (SELECT count(*) FROM ${c}) AS customers,
    (SELECT count(*) FROM ${c} WHERE NOT placeholder) AS real_customers,
    (SELECT count(*) FROM ${c} WHERE placeholder) AS placeholders,
    (SELECT count(*) FROM ${c} WHERE NOT placeholder AND (name IS NULL OR email IS NULL)) AS incomplete,
    (SELECT count(*) FROM ${o}) AS orders,
    (SELECT count(DISTINCT id) FROM ${o}) AS distinct_orders,
    (SELECT count(*) FROM ${o} AS o LEFT JOIN ${c} AS c ON c.id = o.customer_id WHERE c.id IS NULL) AS orphans,
    (SELECT coalesce(sum(amount), 0) FROM ${o}) AS amount_sum`;

type CountsRow = Record<'customers' | 'real_customers' | 'placeholders' | 'incomplete' | 'orders' | 'distinct_orders' | 'orphans' | 'amount_sum', unknown>;

function fromCounts(row: CountsRow, customerDigest: number, orderDigest: number): TableState {
  // pg returns count(*) and sum(int) as text (int8): Number() covers both drivers.
  return {
    customers: Number(row.customers),
    realCustomers: Number(row.real_customers),
    placeholders: Number(row.placeholders),
    incompleteCustomers: Number(row.incomplete),
    orders: Number(row.orders),
    distinctOrders: Number(row.distinct_orders),
    ordersWithoutCustomer: Number(row.orphans),
    amountSum: Number(row.amount_sum),
    customerDigest,
    orderDigest,
  };
}

export async function readTables(target: DatabaseTarget): Promise<TableState> {
  const c = tableName(target, 'customers');
  const o = tableName(target, 'orders');
  if (target.kind === 'sqlite') {
    // SQLite has no boolean type: placeholder is 0/1, which `NOT placeholder` reads as intended.
    const db = openSqlite(target.path, { readonly: true });
    try {
      const counts = db.prepare(COUNTS(c, o)).get() as CountsRow;
      let customerDigest = 0;
      for (const [id, name, email, placeholder] of db.prepare(`SELECT id, name, email, placeholder FROM ${c}`).raw().iterate() as Iterable<[string, string | null, string | null, number]>) {
        customerDigest += fnv1a(customerDigestLine(id, name, email, placeholder === 1));
      }
      let orderDigest = 0;
      for (const [id, customer, amount] of db.prepare(`SELECT id, customer_id, amount FROM ${o}`).raw().iterate() as Iterable<[string, string, number]>) {
        orderDigest += fnv1a(orderDigestLine(id, customer, amount));
      }
      return fromCounts(counts, customerDigest, orderDigest);
    } finally {
      db.close();
    }
  }
  const client = await connectPostgres(target);
  try {
    const counts = (await client.query(COUNTS(c, o))).rows[0] as CountsRow;
    let customerDigest = 0;
    const customers = await client.query({ text: `SELECT id, name, email, placeholder FROM ${c}`, rowMode: 'array' });
    for (const [id, name, email, placeholder] of customers.rows as [string, string | null, string | null, boolean][]) {
      customerDigest += fnv1a(customerDigestLine(id, name, email, placeholder));
    }
    let orderDigest = 0;
    const orders = await client.query({ text: `SELECT id, customer_id, amount FROM ${o}`, rowMode: 'array' });
    for (const [id, customer, amount] of orders.rows as [string, string, number][]) orderDigest += fnv1a(orderDigestLine(id, customer, amount));
    return fromCounts(counts, customerDigest, orderDigest);
  } finally {
    await client.end();
  }
}

/** Compares what was read with the tally. Pure: the unit tests feed it made-up states. */
export function compare(tally: Tally, tables: TableState, queue: QueueState): CheckResult {
  const e = tally.expected;
  const lines: CheckLine[] = [];
  const line = (name: string, expected: number | string, actual: number | string): void => {
    lines.push({ name, ok: expected === actual, expected, actual });
  };
  line('queue drained (events not yet acked)', 0, queue.remaining);
  line('orders whose customer is missing', 0, tables.ordersWithoutCustomer);
  line('orders stored twice', 0, tables.orders - tables.distinctOrders);
  line('customers with real data but no name/email', 0, tables.incompleteCustomers);
  line('customers', e.customers, tables.customers);
  line('customers with real data', e.realCustomers, tables.realCustomers);
  line('placeholders still waiting', e.placeholders, tables.placeholders);
  line('orders', e.orders, tables.orders);
  line('sum of order amounts', e.amountSum, tables.amountSum);
  line('customer rows match (digest)', e.customerDigest, tables.customerDigest);
  line('order rows match (digest)', e.orderDigest, tables.orderDigest);
  for (const reason of FAILURE_REASONS) {
    const expected = tally.rows.malformed[reason] ?? 0;
    const actual = queue.deadLetters[reason] ?? 0;
    if (expected !== 0 || actual !== 0) line(`dead letters: ${reason}`, expected, actual);
  }
  const unexpected = Object.entries(queue.deadLetters).filter(([reason]) => !(FAILURE_REASONS as readonly string[]).includes(reason));
  line('dead letters for any other reason', 0, unexpected.reduce((n, [, count]) => n + count, 0));
  return { ok: lines.every((l) => l.ok), lines };
}
