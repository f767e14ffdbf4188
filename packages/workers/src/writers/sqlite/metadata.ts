/**
 * SQLite table metadata from `pragma_table_xinfo`, with the table name bound as a parameter so an
 * unchecked name never becomes SQL text. Also the bound-parameter limit of this SQLite build.
 */
import type Database from 'better-sqlite3';
import { ThroughwayError } from '../../errors.js';
import { quoteIdent, type ColumnMeta, type TableMeta } from '../plan.js';

interface XInfoRow {
  name: string;
  type: string;
  pk: number;
  hidden: number;
}

function readColumns(db: Database.Database, table: string, schema: string | null): XInfoRow[] {
  try {
    return (
      schema === null
        ? db.prepare('SELECT name, type, pk, hidden FROM pragma_table_xinfo(?)').all(table)
        : db.prepare('SELECT name, type, pk, hidden FROM pragma_table_xinfo(?, ?)').all(table, schema)
    ) as XInfoRow[];
  } catch {
    // An unknown schema ("unknown database x") is an unknown table to the caller.
    return [];
  }
}

/**
 * Loads `table` ("name" or "schema.name", where schema is `main`, `temp` or an attached database).
 * An exact table name wins over the schema split, since table names may contain dots.
 * Throws `ERR_THROUGHWAY_UNKNOWN_TABLE`.
 */
export function loadSqliteTable(db: Database.Database, table: string): TableMeta {
  let schema: string | null = null;
  let name = table;
  let rows = readColumns(db, table, null);
  const dot = table.indexOf('.');
  if (rows.length === 0 && dot > 0) {
    schema = table.slice(0, dot);
    name = table.slice(dot + 1);
    rows = readColumns(db, name, schema);
  }
  if (rows.length === 0) {
    throw new ThroughwayError('ERR_THROUGHWAY_UNKNOWN_TABLE', `insertAll("${table}"): no table named "${table}" in this SQLite database`, {
      details: { table },
    });
  }
  const columns = new Map<string, ColumnMeta>();
  const order: string[] = [];
  for (const row of rows) {
    // hidden: 0 normal, 1 hidden column of a virtual table, 2/3 generated (virtual/stored).
    columns.set(row.name, { name: row.name, writable: row.hidden < 2 });
    order.push(row.name);
  }
  const primaryKey = rows
    .filter((r) => r.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((r) => r.name);
  return {
    display: table,
    sql: schema === null ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`,
    columns,
    order,
    primaryKey,
  };
}

/** SQLITE_MAX_VARIABLE_NUMBER of this build: the compile option if set, else the version's default. */
export function sqliteMaxVariables(db: Database.Database): number {
  const option = db
    .prepare("SELECT compile_options FROM pragma_compile_options WHERE compile_options LIKE 'MAX_VARIABLE_NUMBER=%'")
    .pluck()
    .get() as string | undefined;
  if (option !== undefined) {
    const n = Number(option.slice('MAX_VARIABLE_NUMBER='.length));
    if (Number.isInteger(n) && n > 0) return n;
  }
  const version = String(db.prepare('SELECT sqlite_version()').pluck().get());
  const [major, minor] = version.split('.').map(Number);
  // 32766 since SQLite 3.32.0; 999 before.
  return major > 3 || (major === 3 && minor >= 32) ? 32766 : 999;
}
