/**
 * What a run finds left by an earlier one, and what it does about it.
 *
 * - A queue whose run was interrupted (Ctrl-C, SIGTERM, kill -9, a crash) is resumed: the demo
 *   promises that running the same command again finishes the rest.
 * - A queue whose run finished (its check ran: it failed, or it passed under `--keep`) holds
 *   nothing to resume; rerunning the check on the same rows would only repeat its verdict (a
 *   failed run failed again and again). The run starts over: the queue and the demo's tables go.
 * - Tables that hold rows no queue knows of (the queue was deleted by hand, or `--database` names
 *   someone else's data) would fail the check: the run refuses and says what to delete.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { connectPostgres, describeTarget, openSqlite, tableName, type DatabaseTarget } from './database.js';
import { SetupError } from './errors.js';
import { openQueue } from './queue.js';
import { readRunRecord } from './run-record.js';
import { removeSqliteFile, removeTarget } from './schema.js';

/** Removes the queue and the demo's tables when the queue holds a finished run. Returns whether it did. */
export async function startOverIfFinished(queueFile: string, target: DatabaseTarget, logger: Logger): Promise<boolean> {
  if (!existsSync(queueFile)) return false;
  const db = openQueue(queueFile);
  let finishedAt: number | null;
  try {
    finishedAt = readRunRecord(db)?.finishedAt ?? null;
  } finally {
    db.close();
  }
  if (finishedAt === null) return false;
  await removeTarget(target);
  removeSqliteFile(queueFile);
  logger.info(`the queue ${queueFile} held a run that finished at ${new Date(finishedAt).toISOString()}: starting over (removed it and the demo's tables in ${describeTarget(target)})`);
  return true;
}

/** Throws a SetupError naming what to delete when the demo's tables hold rows (call for a queue with no run yet). */
export async function refuseForeignRows(target: DatabaseTarget, queueFile: string): Promise<void> {
  const rows = await countRows(target);
  if (rows.customers + rows.orders === 0) return;
  const remove =
    target.kind === 'sqlite'
      ? `rm -f '${target.path}' '${target.path}-wal' '${target.path}-shm'`
      : `DROP TABLE "${target.schema}".orders, "${target.schema}".customers`;
  throw new SetupError(
    `${describeTarget(target)} already holds ${rows.customers} customers and ${rows.orders} orders, but the queue ${queueFile} has no run that wrote them ` +
      `(left by a run whose queue was deleted?); the check would fail. Delete them first (${remove}), or pick another --database`,
  );
}

async function countRows(target: DatabaseTarget): Promise<{ customers: number; orders: number }> {
  const sql = `SELECT (SELECT count(*) FROM ${tableName(target, 'customers')}) AS customers, (SELECT count(*) FROM ${tableName(target, 'orders')}) AS orders`;
  if (target.kind === 'sqlite') {
    const db = openSqlite(target.path, { readonly: true });
    try {
      return db.prepare(sql).get() as { customers: number; orders: number };
    } finally {
      db.close();
    }
  }
  const client = await connectPostgres(target);
  try {
    const row = (await client.query(sql)).rows[0] as { customers: string; orders: string };
    return { customers: Number(row.customers), orders: Number(row.orders) };
  } finally {
    await client.end();
  }
}
