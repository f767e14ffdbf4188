/**
 * Value conversions shared by both dialects. The hot loops call these only for values that are not
 * already a string or a number, so the common columns pay one `typeof` each.
 */
import { ThroughwayError, describeValue } from '../errors.js';

// `timestamps()` puts one Date on every row of a batch: remember the last conversion so a batch
// formats it once instead of twice per row (toISOString costs about as much as binding a row).
let lastTime = NaN;
let lastIso = '';

/** ISO 8601 UTC text of a Date; throws `ERR_THROUGHWAY_INVALID_VALUE` for an invalid Date. */
export function dateText(date: Date): string {
  const time = date.getTime();
  if (time === lastTime) return lastIso;
  if (Number.isNaN(time)) throw new ThroughwayError('ERR_THROUGHWAY_INVALID_VALUE', 'an invalid Date cannot be written');
  lastIso = date.toISOString();
  lastTime = time;
  return lastIso;
}

/** Values no database column can hold. */
export function unwritable(value: unknown): ThroughwayError {
  return new ThroughwayError('ERR_THROUGHWAY_INVALID_VALUE', `${describeValue(value)} cannot be written to a column`);
}

/**
 * The value better-sqlite3 should bind for `value`: strings, numbers, bigints, null and bytes as
 * they are; booleans as 1/0; Dates as ISO text; other objects as JSON text.
 */
export function sqliteValue(value: unknown): unknown {
  if (typeof value === 'string' || typeof value === 'number') return value;
  if (value instanceof Date) return dateText(value);
  if (value === null || typeof value === 'bigint' || value instanceof Uint8Array) return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'object') return JSON.stringify(value);
  throw unwritable(value);
}

/**
 * Adds the table and column to a value error by finding the first bad value again; called only on
 * the error path so the hot loop keeps no bookkeeping.
 */
export function locateValueError(
  error: unknown,
  table: string,
  entries: readonly Record<string, unknown>[],
  columns: readonly string[],
  convert: (value: unknown, column: string) => unknown,
): unknown {
  if (!(error instanceof ThroughwayError) || error.code !== 'ERR_THROUGHWAY_INVALID_VALUE') return error;
  for (let i = 0; i < entries.length; i++) {
    for (const column of columns) {
      try {
        convert(entries[i][column], column);
      } catch {
        return new ThroughwayError(
          'ERR_THROUGHWAY_INVALID_VALUE',
          `insertAll("${table}"): column "${column}": ${error.message}`,
          { details: { table, column }, cause: error },
        );
      }
    }
  }
  return error;
}
