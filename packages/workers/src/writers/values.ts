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

function invalidValue(message: string): ThroughwayError {
  return new ThroughwayError('ERR_THROUGHWAY_INVALID_VALUE', message);
}

/**
 * The error for NaN or ±Infinity: SQLite stores NaN as NULL without a word, and most columns of
 * either database cannot hold them. `allowNonFinite` lets ±Infinity into SQLite and every
 * non-finite number into a Postgres float or numeric column.
 */
export function nonFinite(value: number, where: string): ThroughwayError {
  return invalidValue(`${String(value)} is not a finite number; ${where}`);
}

/** The 64-bit signed range: what SQLite's INTEGER and Postgres's bigint hold. */
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** Throws `ERR_THROUGHWAY_INVALID_VALUE` for a bigint outside the 64-bit signed range. */
export function int64(value: bigint): bigint {
  if (value < INT64_MIN || value > INT64_MAX) throw invalidValue(`the BigInt ${value} is outside the 64-bit integer range (-2^63 to 2^63-1)`);
  return value;
}

/**
 * JSON text of an object for a TEXT or json column. Refused instead of written lossily or handed
 * to the driver raw: a Map or Set (JSON.stringify makes `{}` of it), a BigInt inside the object, a
 * circular structure, a `toJSON` that returns undefined, and functions or symbols at the top.
 */
export function jsonText(value: unknown): string {
  if (value instanceof Map || value instanceof Set || value instanceof WeakMap || value instanceof WeakSet) {
    throw invalidValue(`a ${value.constructor.name} has no JSON form (JSON.stringify writes {}); convert it first (Object.fromEntries, Array.from)`);
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    // "Do not know how to serialize a BigInt", "Converting circular structure to JSON", a throwing toJSON.
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_VALUE', `cannot be written as JSON: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  if (text === undefined) throw invalidValue(`${describeValue(value)} has no JSON form (its toJSON returned undefined, or it is a function or symbol)`);
  return text;
}

/**
 * The value better-sqlite3 should bind for `value`: strings, finite numbers, 64-bit bigints, null
 * and bytes as they are; booleans as 1/0; Dates as ISO text; other objects as JSON text (see
 * {@link jsonText}). NaN is always refused (SQLite has no NaN: it would store NULL); ±Infinity
 * only passes with `allowNonFinite`.
 */
export function sqliteValue(value: unknown, allowNonFinite = false): unknown {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (value - value === 0 || (allowNonFinite && value === value)) return value;
    throw nonFinite(value, allowNonFinite ? 'SQLite cannot store NaN (it would become NULL)' : 'pass `allowNonFinite: true` to write ±Infinity (SQLite cannot store NaN)');
  }
  if (value instanceof Date) return dateText(value);
  if (value === null || value instanceof Uint8Array) return value;
  if (typeof value === 'bigint') return int64(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'object') return jsonText(value);
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
        convert(Object.prototype.hasOwnProperty.call(entries[i], column) ? entries[i][column] : undefined, column);
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
