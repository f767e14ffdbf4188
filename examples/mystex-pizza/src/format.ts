/** Number and time formatting for the summary. */

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');

export function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export const rate = (count: number, ms: number): number => (ms > 0 ? (count * 1000) / ms : 0);

/** Left-aligned text columns, the last one free; every row gets the same widths. */
export function columns(rows: string[][], indent = '  ', gap = '  '): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join(gap).trimEnd())
    .join('\n');
}
