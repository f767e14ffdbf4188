/**
 * Validation of `insertAll` options, shared by both databases. Done before any metadata lookup so a
 * typo (`conflict_target`) fails fast and the same way on SQLite and Postgres.
 */
import { ThroughwayError, describeValue } from '../errors.js';

export type ConflictMode = 'raise' | 'nothing' | 'replace_all_except_primary_key' | 'replace';

/** Options in one shape, names not yet checked against the table. */
export interface NormalizedOptions {
  mode: ConflictMode;
  /** Columns of `{ replace }`. */
  replace: string[] | null;
  target: string[] | null;
  /** `true` = every column. */
  returning: string[] | true | null;
  /** Let NaN/±Infinity into columns that hold them (see InsertAllOptions). */
  allowNonFinite: boolean;
}

const KNOWN = new Set(['onConflict', 'conflictTarget', 'returning', 'allowNonFinite']);
const DEFAULTS: NormalizedOptions = { mode: 'raise', replace: null, target: null, returning: null, allowNonFinite: false };

function invalid(table: string, option: string, message: string): ThroughwayError {
  return new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `insertAll("${table}"): option \`${option}\` ${message}`, {
    details: { table, option },
  });
}

function columnList(table: string, option: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid(table, option, `must be a non-empty array of column names, got ${describeValue(value)}`);
  }
  for (const name of value) {
    if (typeof name !== 'string' || name === '') {
      throw invalid(table, option, `must hold column names (non-empty strings), got ${describeValue(name)}`);
    }
  }
  if (new Set(value).size !== value.length) throw invalid(table, option, 'names a column twice');
  return value.slice() as string[];
}

/** Checks `options` and returns them normalized; throws `ERR_THROUGHWAY_INVALID_OPTION` naming the option. */
export function normalizeOptions(table: string, options: unknown): NormalizedOptions {
  if (options === undefined || options === null) return DEFAULTS;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(table, 'options', `must be an object, got ${describeValue(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) {
      throw invalid(table, key, `is not an insertAll option (known: onConflict, conflictTarget, returning, allowNonFinite)`);
    }
  }
  const out: NormalizedOptions = { ...DEFAULTS };

  const onConflict = o.onConflict;
  if (onConflict === undefined || onConflict === 'raise') out.mode = 'raise';
  else if (onConflict === 'nothing' || onConflict === 'replace_all_except_primary_key') out.mode = onConflict;
  else if (typeof onConflict === 'object' && onConflict !== null && !Array.isArray(onConflict)) {
    const keys = Object.keys(onConflict);
    if (keys.length !== 1 || keys[0] !== 'replace') {
      throw invalid(table, 'onConflict', 'as an object must be exactly `{ replace: [columns] }`');
    }
    out.mode = 'replace';
    out.replace = columnList(table, 'onConflict.replace', (onConflict as { replace: unknown }).replace);
  } else {
    throw invalid(
      table,
      'onConflict',
      `must be 'raise', 'nothing', 'replace_all_except_primary_key' or { replace: [columns] }, got ${describeValue(onConflict)}`,
    );
  }

  if (o.conflictTarget !== undefined) {
    if (out.mode === 'raise') {
      throw invalid(table, 'conflictTarget', "is not allowed with onConflict 'raise' (as in Ecto)");
    }
    out.target = columnList(table, 'conflictTarget', o.conflictTarget);
  }

  const returning = o.returning;
  if (returning === true) out.returning = true;
  else if (returning !== undefined && returning !== false) out.returning = columnList(table, 'returning', returning);

  if (o.allowNonFinite !== undefined) {
    if (typeof o.allowNonFinite !== 'boolean') throw invalid(table, 'allowNonFinite', `must be a boolean, got ${describeValue(o.allowNonFinite)}`);
    out.allowNonFinite = o.allowNonFinite;
  }
  return out;
}

/** Checks the positional arguments of `insertAll` (the dialects trust their types from here on). */
export function checkInsertArguments(table: unknown, entries: unknown): asserts table is string {
  if (typeof table !== 'string' || table === '') {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `insertAll(table): table must be a non-empty string, got ${describeValue(table)}`, {
      details: { option: 'table' },
    });
  }
  // No table name holds NUL: SQLite would cut the name there, Postgres refuses the query text.
  if (table.includes('\0')) {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `insertAll(table): table must not contain a NUL character, got ${describeValue(table)}`, {
      details: { option: 'table' },
    });
  }
  if (!Array.isArray(entries)) {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `insertAll("${table}"): entries must be an array, got ${describeValue(entries)}`, {
      details: { table, option: 'entries' },
    });
  }
}
