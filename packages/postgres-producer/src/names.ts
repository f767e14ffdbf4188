import { quoteIdentifier } from './options.js';

/** Every quoted name made from one queue table name (already checked by `tableName`). */
export interface QueueNames {
  table: string;
  q: string;
  dead: string;
  claimIndex: string;
  notifyFunction: string;
  notifyTrigger: string;
  /** The NOTIFY channel, unquoted (it is a string to pg_notify, an identifier to LISTEN). */
  channel: string;
}

/**
 * The names of a queue's objects. `table` must have passed `tableName` (at most 40 characters),
 * so every suffixed name stays under Postgres's 63-byte limit.
 *
 * @example
 * queueNames('orders').dead // '"orders_dead"'
 */
export function queueNames(table: string): QueueNames {
  return {
    table,
    q: quoteIdentifier(table, 'table'),
    dead: quoteIdentifier(`${table}_dead`, 'table'),
    claimIndex: quoteIdentifier(`${table}_claim`, 'table'),
    notifyFunction: quoteIdentifier(`${table}_notify`, 'table'),
    notifyTrigger: quoteIdentifier(`${table}_notify`, 'table'),
    channel: `throughway_${table}`,
  };
}

/**
 * SQL true for a row `q` of the queue whose id is in the bigint[] parameter `ids` and whose lease
 * is the one the jsonb parameter `leases` maps its id to (see {@link leaseMap}).
 *
 * Not a join with `unnest(ids, leases)`: the planner's choice of join then rests on the table's
 * statistics, and a queue table is often vacuumed or analyzed while it is empty. With
 * `reltuples = 0` and pages left, every later estimate of the table is 0 rows, and the planner
 * joined the acks by scanning the whole table once per acked row — 20 to 45 s for an ack of 2,048
 * rows of a 40,000-row backlog (measured). `id = ANY($ids)` is an index condition whatever the
 * statistics say, and the lease is a filter on the rows it finds (a jsonb lookup, O(log n)).
 *
 * @example
 * `DELETE FROM ${q} AS q WHERE ${leaseMatch('$1', '$2')}`
 */
export function leaseMatch(ids: string, leases: string): string {
  return `q.id = ANY (${ids}::bigint[]) AND q.lease = (${leases}::jsonb ->> q.id::text)::bigint`;
}

/**
 * The parameters of {@link leaseMatch} for these `(id, lease)` pairs, whose ids must be distinct:
 * the ids, and a JSON object from each id to its lease.
 *
 * @example
 * leaseMap([{ id: 7, lease: 42 }]) // [[7], '{"7":42}']
 */
export function leaseMap(pairs: readonly { id: number; lease: number }[]): [number[], string] {
  const ids = new Array<number>(pairs.length);
  let json = '{';
  for (let i = 0; i < pairs.length; i++) {
    const { id, lease } = pairs[i]!;
    ids[i] = id;
    json += `${i > 0 ? ',' : ''}"${id}":${lease}`;
  }
  return [ids, `${json}}`];
}

/**
 * `pairs` split into runs whose ids are distinct (a jsonb object keeps one value per key): the
 * first holds each id's first pair, the next its second, and so on. Almost always one run.
 */
export function distinctRuns<T extends { id: number }>(pairs: readonly T[]): T[][] {
  const runs: T[][] = [];
  const seen = new Map<number, number>();
  for (const p of pairs) {
    const k = seen.get(p.id) ?? 0;
    seen.set(p.id, k + 1);
    (runs[k] ??= []).push(p);
  }
  return runs;
}
