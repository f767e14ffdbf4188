/**
 * Reading entries' values with code compiled per column list. Why compile: `entry[column]` with a
 * variable `column` is a keyed load V8 cannot specialise (~40 ns each); `entry["id"]` with a constant
 * name is a monomorphic named load (~1 ns). On SQLite's ~1 µs-per-row budget that difference alone
 * is 15–20% of the throughput.
 *
 * The generated code holds nothing but the column names as JSON string literals (always a valid,
 * inert JS string), and those names were already checked against the table's catalog.
 */

export interface RowReader {
  /** Index of the first entry at or after `from` with an undefined value in one of the columns, or -1. */
  undefinedAt(entries: readonly object[], from: number): number;
  /** Writes the values of rows `[start, end)` row-major into `out`, from `out[0]`. */
  read(entries: readonly object[], start: number, end: number, out: unknown[]): void;
}

const readers = new Map<string, RowReader>();
const MAX_READERS = 512;

/**
 * The load of one column: `e["name"]`, or for a name `Object.prototype` has (`constructor`,
 * `toString`, `__proto__`, ...) the entry's own value only: `e["constructor"]` of an entry without
 * that key is Object, not absent, and `e["__proto__"]` its prototype.
 */
function load(column: string): string {
  const name = JSON.stringify(column);
  return column in Object.prototype ? `(Object.hasOwn(e, ${name}) ? e[${name}] : undefined)` : `e[${name}]`;
}

function compile(columns: readonly string[]): RowReader {
  const names = columns.map(load);
  const undefinedAt = new Function(
    'entries',
    'from',
    `'use strict';
  for (let i = from; i < entries.length; i++) {
    const e = entries[i];
    if (${names.map((n) => `${n} === undefined`).join(' || ')}) return i;
  }
  return -1;`,
  ) as RowReader['undefinedAt'];
  const read = new Function(
    'entries',
    'start',
    'end',
    'out',
    `'use strict';
  let o = 0;
  for (let i = start; i < end; i++) {
    const e = entries[i];
    ${names.map((n) => `out[o++] = ${n};`).join('\n    ')}
  }`,
  ) as RowReader['read'];
  return { undefinedAt, read };
}

/** The reader for `columns`, compiled once per distinct column list. */
export function rowReader(columns: readonly string[]): RowReader {
  const key = JSON.stringify(columns);
  let reader = readers.get(key);
  if (reader === undefined) {
    // A bound, not an LRU: distinct column lists are few in any real pipeline.
    if (readers.size >= MAX_READERS) readers.clear();
    reader = compile(columns);
    readers.set(key, reader);
  }
  return reader;
}

/** Every value of `entries`, row-major: `values[row * columns.length + column]`. */
export function readAll(reader: RowReader, width: number, entries: readonly object[]): unknown[] {
  const out = new Array<unknown>(entries.length * width);
  reader.read(entries, 0, entries.length, out);
  return out;
}
