/**
 * Turns (table metadata, entries, options) into a write plan: entries grouped by key set, every name
 * checked against the catalog, the conflict clause resolved per group. Both dialects execute a plan;
 * nothing reaches SQL that did not pass through here, which is what makes quoting sufficient.
 */
import { ThroughwayError, describeValue } from '../errors.js';
import type { Entry } from './types.js';
import type { NormalizedOptions } from './options.js';
import { rowReader, type RowReader } from './rows.js';

/** What the planner needs to know about a column. */
export interface ColumnMeta {
  name: string;
  /** Generated columns cannot be written. */
  writable: boolean;
}

/** Table metadata as each dialect loads it from its catalog. */
export interface TableMeta<C extends ColumnMeta = ColumnMeta> {
  /** The name as the caller wrote it, for messages. */
  display: string;
  /** Quoted, schema-qualified name, safe to splice into SQL. */
  sql: string;
  columns: Map<string, C>;
  /** Readable columns in table order, for `returning: true`. */
  order: string[];
  primaryKey: string[];
}

/** One group of entries with the same key set: one statement text (per chunk size). */
export interface ShapePlan {
  /** Columns to insert, sorted so that key order does not split groups. */
  columns: string[];
  /** No entry holds an undefined value in `columns`. */
  entries: Entry[];
  /** Reads the entries' values (compiled for `columns`). */
  reader: RowReader;
  /** `ON CONFLICT (...)` target, or null for no target. */
  target: string[] | null;
  /** null = no ON CONFLICT clause; [] = DO NOTHING; otherwise DO UPDATE SET these columns. */
  update: string[] | null;
  returning: string[] | null;
  /** Identifies the statement text apart from the row count; cache key material. */
  key: string;
  /** NaN/±Infinity may be written where the column holds them (option `allowNonFinite`). */
  allowNonFinite: boolean;
}

/** Quotes an identifier for SQLite and Postgres alike (both use standard double quotes). */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

function unknownColumn(table: TableMeta, column: string, where: string): ThroughwayError {
  const known = table.order.join(', ');
  return new ThroughwayError(
    'ERR_THROUGHWAY_UNKNOWN_COLUMN',
    `insertAll("${table.display}"): unknown column "${column}" ${where} (columns of ${table.display}: ${known})`,
    { details: { table: table.display, column } },
  );
}

function checkColumns(table: TableMeta, names: readonly string[], where: string, writing: boolean): void {
  for (const name of names) {
    const column = table.columns.get(name);
    if (column === undefined) throw unknownColumn(table, name, where);
    if (writing && !column.writable) {
      throw new ThroughwayError(
        'ERR_THROUGHWAY_UNKNOWN_COLUMN',
        `insertAll("${table.display}"): column "${name}" ${where} is generated and cannot be written`,
        { details: { table: table.display, column: name, generated: true } },
      );
    }
  }
}

function invalidValue(table: string, index: number, message: string): ThroughwayError {
  return new ThroughwayError('ERR_THROUGHWAY_INVALID_VALUE', `insertAll("${table}"): entry ${index} ${message}`, {
    details: { table, index },
  });
}

interface Group {
  columns: string[];
  entries: Entry[];
}

/** The number of enumerable keys: a for-in count allocates nothing, unlike `Object.keys`. */
function keyCount(entry: object): number {
  let n = 0;
  for (const _ in entry) n++;
  return n;
}

/**
 * Groups entries by the keys whose value is not undefined, columns sorted so that key order does not
 * split groups. Exact (own enumerable keys only: `Object.keys`), and used for the entries the fast
 * path could not place.
 */
function groupByDefinedKeys(table: string, entries: readonly Entry[], all: readonly Entry[], groups: Map<string, Group>): Group[] {
  const added: Group[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw invalidValue(table, all.indexOf(entry), `must be a plain object of column → value, got ${describeValue(entry)}`);
    }
    const columns = Object.keys(entry)
      .filter((key) => entry[key] !== undefined)
      .sort();
    if (columns.length === 0) throw invalidValue(table, all.indexOf(entry), 'has no columns (every key is absent or undefined)');
    const signature = JSON.stringify(columns);
    let group = groups.get(signature);
    if (group === undefined) {
      group = { columns, entries: [] };
      groups.set(signature, group);
      added.push(group);
    }
    group.entries.push(entry);
  }
  return added;
}

/**
 * Groups entries by the keys they define (a key whose value is `undefined` counts as absent);
 * `check` sees every group's columns before any value is read.
 *
 * Fast path, taken by every entry in the common case: the entry has as many keys as the first
 * entry and none of the first entry's columns reads as undefined; then its key set is the first
 * entry's. That costs a for-in count and a few compiled loads per entry, instead of an
 * `Object.keys` array and a string comparison per key. Entries failing it are grouped exactly.
 */
function groupEntries(table: string, entries: readonly Entry[], check: (columns: string[]) => void): Group[] {
  const groups = new Map<string, Group>();
  const [first] = groupByDefinedKeys(table, [entries[0]], entries, groups);
  const width = first.columns.length;
  // A for-in count equals the own enumerable key count only for plain objects: an entry with a
  // prototype of its own (Object.create, a class) goes the exact way, so that no inherited
  // property is taken for a column.
  const fits = (entry: Entry) => {
    if (typeof entry !== 'object' || entry === null) return false;
    const proto = Object.getPrototypeOf(entry);
    return (proto === Object.prototype || proto === null) && keyCount(entry) === width;
  };
  // Indices, not entries: regrouped entries keep their input order among themselves.
  const dirty: number[] = [];
  let i = 1;
  while (i < entries.length && fits(entries[i])) i++;
  // The common case reuses the caller's array (never mutated): no copy of the batch.
  let candidates: readonly Entry[] = entries;
  if (i < entries.length) {
    const kept = entries.slice(0, i);
    for (; i < entries.length; i++) {
      if (fits(entries[i])) kept.push(entries[i]);
      else dirty.push(i);
    }
    candidates = kept;
  }
  check(first.columns);
  const reader = rowReader(first.columns);
  let bad = reader.undefinedAt(candidates, 0);
  // Sharing the caller's array is safe: it is used only when every entry fitted, and then no
  // regrouped entry can be pushed into this group (there are none).
  if (bad === -1) first.entries = candidates as Entry[];
  else {
    // Some candidates lack a column (or hold undefined): keep the clean ones, regroup the rest.
    const clean = candidates.slice(0, bad);
    let cursor = 0; // candidates keep input order, so their input indices are found scanning forward
    for (let k = bad; k < candidates.length; k = bad + 1) {
      bad = reader.undefinedAt(candidates, k);
      if (bad === -1) bad = candidates.length;
      else {
        const at = entries.indexOf(candidates[bad], cursor);
        dirty.push(at);
        cursor = at + 1;
      }
      for (let c = k; c < bad; c++) clean.push(candidates[c]);
    }
    first.entries = clean;
  }
  if (dirty.length > 0) {
    dirty.sort((a, b) => a - b);
    for (const group of groupByDefinedKeys(table, dirty.map((d) => entries[d]), entries, groups)) check(group.columns);
  }
  return [...groups.values()].filter((g) => g.entries.length > 0);
}

/**
 * Validates everything against the table and resolves the conflict clause per group. Throws before
 * any write: unknown or generated columns, a replace mode without a usable conflict target.
 */
export function planInsert(table: TableMeta, entries: readonly Entry[], options: NormalizedOptions): ShapePlan[] {
  const groups = groupEntries(table.display, entries, (columns) => checkColumns(table, columns, 'in the entries', true));
  if (options.target) checkColumns(table, options.target, 'in option conflictTarget', false);
  if (options.replace) checkColumns(table, options.replace, 'in option onConflict.replace', true);
  let returning: string[] | null = null;
  if (options.returning === true) returning = table.order;
  else if (options.returning) {
    checkColumns(table, options.returning, 'in option returning', false);
    returning = options.returning;
  }

  let target = options.target;
  if ((options.mode === 'replace' || options.mode === 'replace_all_except_primary_key') && target === null) {
    if (table.primaryKey.length === 0) {
      throw new ThroughwayError(
        'ERR_THROUGHWAY_INVALID_OPTION',
        `insertAll("${table.display}"): option \`conflictTarget\` is required: the table has no primary key to default to`,
        { details: { table: table.display, option: 'conflictTarget' } },
      );
    }
    target = table.primaryKey;
  }

  const pk = new Set(table.primaryKey);
  // JSON, not join(','): column names may contain any character.
  const optionKey = JSON.stringify([options.mode, target, options.replace, returning]);
  return groups.map((group) => {
    let update: string[] | null = null;
    if (options.mode === 'nothing') update = [];
    else if (options.mode === 'replace') update = options.replace;
    else if (options.mode === 'replace_all_except_primary_key') {
      update = group.columns.filter((c) => !pk.has(c));
      // Entries holding only key columns: a no-op update of the target keeps upsert counting
      // (every conflicting row counts) without changing any value.
      if (update.length === 0) update = target!.slice();
    }
    return {
      columns: group.columns,
      entries: group.entries,
      reader: rowReader(group.columns),
      target: options.mode === 'raise' ? null : target,
      update,
      returning,
      key: JSON.stringify(group.columns) + optionKey,
      allowNonFinite: options.allowNonFinite,
    };
  });
}
