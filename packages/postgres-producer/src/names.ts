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
