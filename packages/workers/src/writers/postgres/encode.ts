/**
 * Text encodings for Postgres: one value → its text form (what the type's input function reads),
 * then framed either as an array-literal element (unnest parameters) or as a COPY text field.
 * We encode ourselves instead of letting `pg` turn JS arrays into literals so that Dates, booleans,
 * JSON and bytes are written the same way by both paths.
 */
import { ThroughwayError } from '../../errors.js';
import { dateText, int64, jsonText, nonFinite, unwritable } from '../values.js';
import type { PgFamily, PgKind } from './metadata.js';

/** What encoding a value needs to know of its column. */
export interface PgTarget {
  kind: PgKind;
  family: PgFamily;
  /** Option `allowNonFinite`: NaN and ±Infinity pass into a float or numeric column. */
  allowNonFinite: boolean;
}

/** An element of an array literal. */
const ELEMENT: PgTarget = { kind: 'plain', family: 'element', allowNonFinite: false };

function bytesText(value: Uint8Array): string {
  return '\\x' + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
}

/**
 * The text form of a non-null value for a column (see {@link PgTarget}). A string is passed as
 * the column type's input text, as pg does: for a json/jsonb column it is JSON text (`'42'` is the
 * number 42; `JSON.stringify` a string to store a JSON string). Refused with
 * `ERR_THROUGHWAY_INVALID_VALUE`: non-finite numbers (unless allowed into a float column), a BigInt
 * outside 64 bits for an integer column, bytes for a column that is not bytea (they would be
 * written as `\x...` text), and objects without a faithful JSON form (see jsonText).
 */
export function pgText(value: unknown, target: PgTarget): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && value - value !== 0) {
    if (target.allowNonFinite && target.family === 'float') return String(value);
    throw nonFinite(value, target.family === 'float' ? 'pass `allowNonFinite: true` to write it to this column' : 'this column cannot hold it');
  }
  if (target.kind === 'json') {
    // A JSON number of any size.
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'function' || typeof value === 'symbol' || value === undefined) throw unwritable(value);
    if (value instanceof Uint8Array) throw bytesRefused('json');
    return jsonText(value);
  }
  switch (typeof value) {
    case 'number':
      return String(value);
    case 'bigint':
      return String(target.family === 'integer' ? int64(value) : value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value instanceof Date) return dateText(value);
      if (value instanceof Uint8Array) {
        if (target.family !== 'bytea' && target.family !== 'element') throw bytesRefused('not bytea');
        return bytesText(value);
      }
      if (Array.isArray(value) && target.kind === 'array') return arrayLiteral(value);
      if (value !== null) return jsonText(value);
  }
  throw unwritable(value);
}

function bytesRefused(what: string): ThroughwayError {
  return new ThroughwayError('ERR_THROUGHWAY_INVALID_VALUE', `bytes can only be written to a bytea column (this one is ${what}; they would be stored as \\x... text)`);
}

const HAS_ELEMENT_SPECIAL = /["\\]/;
const ELEMENT_SPECIAL = /["\\]/g;

/** `"..."` with `\` and `"` escaped: always quoting is simpler than deciding when quotes are needed. */
function quoteElement(text: string): string {
  return '"' + (HAS_ELEMENT_SPECIAL.test(text) ? text.replace(ELEMENT_SPECIAL, '\\$&') : text) + '"';
}

/** A Postgres array literal, `{...}`, nested arrays as nested braces. */
export function arrayLiteral(values: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (Array.isArray(v)) out += arrayLiteral(v);
    else out += quoteElement(pgText(v, ELEMENT));
  }
  return out + '}';
}

/**
 * The unnest parameter for column `column` of rows `[start, end)` of a row-major `values` array
 * (see rows.ts): an array literal. Numbers go unquoted (the common case costs one `String()`),
 * null as NULL, the rest quoted.
 */
export function columnParameter(values: readonly unknown[], width: number, column: number, start: number, end: number, target: PgTarget): string {
  const kind = target.kind;
  const parts = new Array<string>(end - start);
  for (let i = start, k = start * width + column; i < end; i++, k += width) {
    const v = values[k];
    parts[i - start] =
      typeof v === 'number' && v - v === 0
        ? String(v)
        : typeof v === 'string'
          ? quoteElement(v)
          : v === null
            ? 'NULL'
            : v instanceof Date && kind !== 'json'
              ? dateText(v) // digits, '-', ':', '.', 'T', 'Z': nothing to quote
              : quoteElement(pgText(v, target));
  }
  return '{' + parts.join(',') + '}';
}

const COPY_SPECIAL = /[\\\n\r\t]/g;
const HAS_COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Escapes a COPY text field. `test` first: it is ~2.5x cheaper than a `replace` that finds nothing. */
function copyField(text: string): string {
  return HAS_COPY_SPECIAL.test(text) ? text.replace(COPY_SPECIAL, (c) => COPY_ESCAPES[c]) : text;
}

/** Flushes COPY data in pieces of about this many characters (one CopyData message each). */
const COPY_CHUNK_CHARS = 256 * 1024;

/**
 * COPY text-format data for rows `[start, end)` of a row-major `values` array, as Buffers ready
 * for CopyData messages: fields separated by tabs, rows by newlines, NULL as `\N`, backslash
 * escapes in values.
 */
export function copyChunks(values: readonly unknown[], width: number, start: number, end: number, targets: readonly PgTarget[]): Buffer[] {
  const chunks: Buffer[] = [];
  let text = '';
  for (let i = start, k = start * width; i < end; i++) {
    for (let c = 0; c < width; c++, k++) {
      const v = values[k];
      if (c > 0) text += '\t';
      text +=
        typeof v === 'number' && v - v === 0
          ? String(v)
          : typeof v === 'string'
            ? copyField(v)
            : v === null
              ? '\\N'
              : v instanceof Date && targets[c]!.kind !== 'json'
                ? dateText(v) // nothing to escape in ISO text
                : copyField(pgText(v, targets[c]!));
    }
    text += '\n';
    if (text.length >= COPY_CHUNK_CHARS) {
      chunks.push(Buffer.from(text, 'utf8'));
      text = '';
    }
  }
  if (text.length > 0) chunks.push(Buffer.from(text, 'utf8'));
  return chunks;
}
