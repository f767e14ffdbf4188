/**
 * Postgres table metadata from the catalog. Names are bound as parameters; the column types come
 * back from `format_type`, which quotes them, so they can be spliced into the unnest casts.
 */
import type pg from 'pg';
import { ThroughwayError } from '../../errors.js';
import { quoteIdent, type ColumnMeta, type TableMeta } from '../plan.js';

/**
 * How a column's values are encoded: `json` (json/jsonb: objects become JSON), `array` (an array
 * column: JS arrays become array literals, and the unnest parameter is text[] cast per element since
 * Postgres has no arrays of arrays), or `plain`.
 */
export type PgKind = 'plain' | 'json' | 'array';

/**
 * What a column's base type accepts beyond text, for the value checks of encode.ts: `float`
 * (real, double precision, numeric: NaN and ±Infinity), `integer` (smallint, integer, bigint: a
 * BigInt must fit 64 bits), `bytea` (bytes), `other`; `element` is an element of an array column,
 * whose type is not looked at.
 */
export type PgFamily = 'float' | 'integer' | 'bytea' | 'other' | 'element';

const FAMILIES = new Map<string, PgFamily>([
  ['700', 'float'],
  ['701', 'float'],
  ['1700', 'float'],
  ['20', 'integer'],
  ['21', 'integer'],
  ['23', 'integer'],
  ['17', 'bytea'],
]);

export interface PgColumn extends ColumnMeta {
  /** `format_type(type, NULL)`: without the typmod, so a cast never truncates varchar(n) silently;
   * the column's own typmod still applies (with an error) when the row is stored. */
  type: string;
  kind: PgKind;
  family: PgFamily;
  /** The element type of the unnest parameter array, e.g. `bigint` for `bigint[]`, `text` for array columns. */
  paramType: string;
}

export type PgTable = TableMeta<PgColumn>;

// Every column is selected as text: the caller's client may carry custom type parsers.
interface ColumnRow {
  nspname: string;
  relname: string;
  attname: string;
  type: string;
  generated: 'true' | 'false';
  category: string;
  base_oid: string;
  has_array: 'true' | 'false';
  pk_position: string | null;
}

// One query resolves the name (explicit schema, or the first schema of the search path holding the
// table, as an unqualified name in SQL would) and lists its columns with primary-key positions.
const COLUMNS_SQL = `
WITH target AS (
  SELECT c.oid, n.nspname, c.relname
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relname = $2
    AND c.relkind IN ('r', 'p', 'v', 'f')
    AND (CASE WHEN $1::text IS NULL THEN n.nspname = ANY (pg_catalog.current_schemas(true)) ELSE n.nspname = $1::text END)
  ORDER BY array_position(pg_catalog.current_schemas(true), n.nspname::text)
  LIMIT 1
), pk AS (
  SELECT k.attnum, k.ord
  FROM target t
  JOIN pg_catalog.pg_index i ON i.indrelid = t.oid AND i.indisprimary
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
)
SELECT t.nspname, t.relname, a.attname,
       pg_catalog.format_type(a.atttypid, NULL) AS type,
       (a.attgenerated <> '')::text AS generated,
       ty.typcategory::text AS category,
       (CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END)::text AS base_oid,
       (ty.typarray <> 0)::text AS has_array,
       pk.ord::text AS pk_position
FROM target t
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pk ON pk.attnum = a.attnum
ORDER BY a.attnum`;

const JSON_OIDS = new Set(['114', '3802']); // json, jsonb

async function readColumns(client: pg.ClientBase, schema: string | null, name: string): Promise<ColumnRow[]> {
  const result = await client.query<ColumnRow>({ text: COLUMNS_SQL, values: [schema, name] });
  return result.rows;
}

/**
 * Loads `table` ("name" or "schema.name"). An unqualified name is looked up along the search path;
 * an exact table name containing a dot wins over the schema split. Throws `ERR_THROUGHWAY_UNKNOWN_TABLE`.
 */
export async function loadPostgresTable(client: pg.ClientBase, table: string): Promise<PgTable> {
  let rows = await readColumns(client, null, table);
  const dot = table.indexOf('.');
  if (rows.length === 0 && dot > 0) rows = await readColumns(client, table.slice(0, dot), table.slice(dot + 1));
  if (rows.length === 0) {
    throw new ThroughwayError(
      'ERR_THROUGHWAY_UNKNOWN_TABLE',
      `insertAll("${table}"): no table named "${table}" (tables are looked up by exact name along the search_path, or as "schema.table")`,
      { details: { table } },
    );
  }
  const columns = new Map<string, PgColumn>();
  const order: string[] = [];
  for (const row of rows) {
    const kind: PgKind = row.category === 'A' ? 'array' : JSON_OIDS.has(row.base_oid) ? 'json' : 'plain';
    columns.set(row.attname, {
      name: row.attname,
      writable: row.generated === 'false',
      type: row.type,
      kind,
      family: FAMILIES.get(row.base_oid) ?? 'other',
      paramType: kind === 'array' || row.has_array === 'false' ? 'text' : row.type,
    });
    order.push(row.attname);
  }
  const primaryKey = rows
    .filter((r) => r.pk_position !== null)
    .sort((a, b) => Number(a.pk_position) - Number(b.pk_position))
    .map((r) => r.attname);
  return {
    display: table,
    sql: `${quoteIdent(rows[0].nspname)}.${quoteIdent(rows[0].relname)}`,
    columns,
    order,
    primaryKey,
  };
}
