/**
 * The SQL clauses SQLite (3.35+) and Postgres spell the same way. Every identifier here comes from a
 * plan, i.e. was checked against the catalog, and is quoted anyway.
 */
import { quoteIdent, type ShapePlan } from './plan.js';

/** `"a", "b"` */
export function columnList(columns: readonly string[]): string {
  return columns.map(quoteIdent).join(', ');
}

/** ` ON CONFLICT ...` or '' */
export function conflictClause(plan: ShapePlan): string {
  if (plan.update === null) return '';
  const target = plan.target ? ` (${columnList(plan.target)})` : '';
  if (plan.update.length === 0) return ` ON CONFLICT${target} DO NOTHING`;
  const set = plan.update.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ');
  return ` ON CONFLICT${target} DO UPDATE SET ${set}`;
}

/** ` RETURNING ...` or '' */
export function returningClause(plan: ShapePlan): string {
  return plan.returning ? ` RETURNING ${columnList(plan.returning)}` : '';
}
