import type { BenchResult } from '../scenario.js';
import type { MachineInfo } from './machine.js';

/** One scenario module's run, as the harness saw it. */
export interface ScenarioRun {
  /** Module name: the file name in bench/dist/scenarios without `.js`. */
  name: string;
  ok: boolean;
  durationMs: number;
  error?: string;
}

/** What `bench/results/latest.json` holds. */
export interface BenchReport {
  machine: MachineInfo;
  quick: boolean;
  only?: string[];
  durationMs: number;
  runs: ScenarioRun[];
  results: BenchResult[];
}

export const TABLE_COLUMNS = ['scenario', 'case', 'value', 'unit', 'baseline', 'ratio', 'target', 'met'] as const;

/** A figure as a person reads it: thousands separated, three significant digits below 1000. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs === 0) return '0';
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

export function formatRatio(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '';
  return `${ratio >= 100 ? ratio.toFixed(0) : ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}×`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** The cells of one table row, in TABLE_COLUMNS order. */
export function rowCells(r: BenchResult): string[] {
  const baseline = r.baseline ? `${r.baseline.name}: ${formatNumber(r.baseline.value)}` : '';
  const met = r.met === undefined ? '' : r.met ? 'yes' : '**no**';
  return [r.scenario, r.case, formatNumber(r.value), r.unit, baseline, formatRatio(r.ratio), r.target ?? '', met].map(cell);
}

export function markdownTable(results: BenchResult[]): string {
  const lines = [`| ${TABLE_COLUMNS.join(' | ')} |`, `|${TABLE_COLUMNS.map((c) => (c === 'value' || c === 'ratio' ? ' ---: ' : ' --- ')).join('|')}|`];
  for (const r of results) lines.push(`| ${rowCells(r).join(' | ')} |`);
  return lines.join('\n');
}

export function machineLine(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores, ${(m.totalMemoryMiB / 1024).toFixed(0)} GiB RAM, Node ${m.node} (${m.platform})`;
}

/** The whole `latest.md`: heading, machine, table, then the notes of the rows that have one. */
export function markdownReport(report: BenchReport): string {
  const out: string[] = [];
  out.push('# Throughway benchmark results', '');
  out.push(`- Machine: ${machineLine(report.machine)}`);
  out.push(`- Date: ${report.machine.date}${report.machine.loadAverage ? `; load average at start ${report.machine.loadAverage.join(' / ')}${report.machine.loadAverageEnd ? `, at end ${report.machine.loadAverageEnd.join(' / ')}` : ''} (1/5/15 min; on 2 cores, anything above ~0.5 means other work skewed the figures)` : ''}`);
  out.push(`- Mode: ${report.quick ? 'quick (`pnpm bench --quick`)' : 'full (`pnpm bench`)'}${report.only ? `, only: ${report.only.join(', ')}` : ''}; took ${(report.durationMs / 1000).toFixed(0)} s`);
  const failed = report.runs.filter((r) => !r.ok);
  if (failed.length) out.push(`- Failed scenario modules: ${failed.map((r) => r.name).join(', ')}`);
  out.push('', markdownTable(report.results), '');
  const notes = report.results.filter((r) => r.note);
  if (notes.length) {
    out.push('Notes:', '');
    for (const r of notes) out.push(`- **${cell(r.scenario)} / ${cell(r.case)}**: ${r.note!.replace(/\r?\n/g, ' ')}`);
    out.push('');
  }
  return out.join('\n');
}

/** The row that stands for a scenario module that threw, crashed or timed out. */
export function failedResult(name: string, error: string): BenchResult {
  return { scenario: name, case: 'FAILED', value: Number.NaN, unit: '', met: false, note: error };
}
