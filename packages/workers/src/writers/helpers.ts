/**
 * Small helpers for `handleBatch` code, after the seed article (Mystex Pizza): `timestamps()` because
 * bulk inserts do not autogenerate them (Ecto's insert_all neither), and `expectCount()` to fail a
 * whole batch when fewer rows were written than messages arrived.
 */
import { ThroughwayError, describeValue } from '../errors.js';
import type { InsertAllResult } from './types.js';

/** The two timestamp columns of Ecto's `timestamps()` macro. */
export interface Timestamps {
  inserted_at: Date;
  updated_at: Date;
}

/**
 * Returns `{ inserted_at: now, updated_at: now }` to spread into each entry. Both fields hold the
 * same `Date` instance (do not mutate it); the writers store it as ISO 8601 UTC text in SQLite and
 * as a timestamp in Postgres (see `WritableValue`). Compute it once per batch: every row of the batch
 * then carries the same instant, and the writers format it once.
 *
 * @example
 * const ts = timestamps();
 * const entries = messages.map((m) => ({ ...(m.data as Order), ...ts }));
 * await repo.insertAll('orders', entries);
 */
export function timestamps(now: Date = new Date()): Timestamps {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_VALUE', `timestamps(now): now must be a valid Date, got ${describeValue(now)}`);
  }
  return { inserted_at: now, updated_at: now };
}

/**
 * Throws `ERR_THROUGHWAY_COUNT_MISMATCH` unless `result.count` equals `expected` (a number, or an
 * array whose length is the expected count, such as the entries or the messages). Returns `result`
 * otherwise, so it can wrap the call.
 *
 * A throw from `handleBatch` fails every message of the batch with this error, which is what the
 * seed does with `batch_failed/2` when `insert_all` reports fewer rows than messages. Rows already
 * written stay written unless the call runs inside `repo.transaction()`, where the throw also rolls
 * them back. With `onConflict: 'nothing'` skipped rows are not counted, so only use it when a
 * conflict means failure.
 *
 * @example
 * async handleBatch(batcher, messages, info, context) {
 *   const entries = messages.map((m) => ({ ...(m.data as Order), ...timestamps() }));
 *   // fail the whole batch (and write nothing) unless every entry was inserted
 *   await repo.transaction(async (tx) => expectCount(await tx.insertAll('orders', entries), entries));
 *   return messages;
 * }
 */
export function expectCount(result: InsertAllResult, expected: number | { readonly length: number }, label = 'insertAll'): InsertAllResult {
  const want = typeof expected === 'number' ? expected : expected.length;
  if (result.count !== want) {
    throw new ThroughwayError(
      'ERR_THROUGHWAY_COUNT_MISMATCH',
      `${label} wrote ${result.count} row${result.count === 1 ? '' : 's'}, expected ${want}`,
      { details: { expected: want, actual: result.count } },
    );
  }
  return result;
}
