import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync, cpSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { BenchResult } from '../src/scenario.js';
import { failedResult, formatNumber, formatRatio, markdownReport, markdownTable, rowCells, type BenchReport } from '../src/harness/table.js';
import { makePayload, makePayloads } from '../src/fixtures/payloads.js';
import { median } from '../src/harness/measure.js';
import { BROADWAY_CONFIGS, broadwayNow } from '../src/harness/broadway.js';

const machine = { cpu: 'Test CPU', cores: 2, totalMemoryMiB: 24576, node: 'v20.0.0', v8: '11', platform: 'linux-x64', date: '2026-01-01T00:00:00.000Z', loadAverage: [0.5, 0.25, 0.1] };

describe('bench table writer', () => {
  const results: BenchResult[] = [
    {
      scenario: 'no-op',
      case: 'threads, no batchers',
      value: 912_345.6,
      unit: 'msg/s',
      baseline: { name: 'piscina one task/message', value: 30_123 },
      ratio: 30.29,
      target: '>= 800,000 msg/s',
      met: true,
    },
    { scenario: 'memory', case: 'RSS growth, last 30 s', value: 3.456, unit: 'MiB', target: '< 32 MiB', met: false, note: 'grew | a bit' },
    { scenario: 'baseline', case: 'piscina, one task per message', value: 30_123, unit: 'msg/s' },
  ];

  it('formats figures for reading', () => {
    expect(formatNumber(912_345.6)).toBe('912,346');
    expect(formatNumber(3.456)).toBe('3.46');
    expect(formatNumber(0.01234)).toBe('0.0123');
    expect(formatNumber(Number.NaN)).toBe('—');
    expect(formatNumber(null)).toBe('—');
    expect(formatRatio(30.29)).toBe('30.3×');
    expect(formatRatio(1.934)).toBe('1.93×');
    expect(formatRatio(undefined)).toBe('');
  });

  it('writes one row per result, in order, with every column', () => {
    const lines = markdownTable(results).split('\n');
    expect(lines[0]).toBe('| scenario | case | value | unit | baseline | ratio | target | met |');
    expect(lines).toHaveLength(2 + results.length);
    expect(lines[2]).toBe('| no-op | threads, no batchers | 912,346 | msg/s | piscina one task/message: 30,123 | 30.3× | >= 800,000 msg/s | yes |');
    expect(lines[3]).toBe('| memory | RSS growth, last 30 s | 3.46 | MiB |  |  | < 32 MiB | **no** |');
    expect(rowCells(results[2]!)).toEqual(['baseline', 'piscina, one task per message', '30,123', 'msg/s', '', '', '', '']);
  });

  it('reports machine, mode, failed modules and notes (pipes escaped)', () => {
    const report: BenchReport = {
      machine,
      quick: true,
      durationMs: 61_000,
      runs: [
        { name: 'baselines', ok: true, durationMs: 1000 },
        { name: 'pipeline-noop', ok: false, durationMs: 10, error: 'Error: boom' },
      ],
      results: [...results, failedResult('pipeline-noop', 'Error: boom')],
    };
    const md = markdownReport(report);
    expect(md).toContain('- Machine: Test CPU, 2 cores, 24 GiB RAM, Node v20.0.0 (linux-x64)');
    expect(md).toContain('quick (`pnpm bench --quick`)');
    expect(md).toContain('load average at start 0.5 / 0.25 / 0.1');
    expect(md).toContain('- Failed scenario modules: pipeline-noop');
    expect(md).toContain('| pipeline-noop | FAILED | — |  |  |  |  | **no** |');
    expect(md).toContain('- **memory / RSS growth, last 30 s**: grew | a bit');
    expect(md).toContain('- **pipeline-noop / FAILED**: Error: boom');
  });
});

describe('bench fixtures and helpers', () => {
  it('payloads are ~200-byte JSON strings', () => {
    for (const p of makePayloads(50)) {
      expect(p.length).toBe(200);
      expect(() => JSON.parse(p)).not.toThrow();
    }
    expect(JSON.parse(makePayload(7)).id).toBe(7);
  });

  it('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

// The runner end to end, on scenario modules written for the occasion: one that returns rows, one
// that throws, one that dies. Runs the built runner from a copy of bench/dist (so the real
// scenarios are not run), hence it needs `tsc -b` first, as `pnpm test` does.
describe('bench runner', () => {
  const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');

  it('runs each module in a child process and reports a throwing or dying module as a FAILED row', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'throughway-bench-'));
    try {
      const fakeDist = path.join(dir, 'dist');
      cpSync(path.join(dist, 'harness'), path.join(fakeDist, 'harness'), { recursive: true });
      cpSync(path.join(dist, 'run.js'), path.join(fakeDist, 'run.js'));
      writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
      mkdirSync(path.join(fakeDist, 'scenarios'));
      writeFileSync(
        path.join(fakeDist, 'scenarios', 'a-good.js'),
        `export default async ({ quick }) => [{ scenario: 'good', case: 'quick=' + quick + ' pid-differs=' + (process.pid !== Number(process.env.PARENT_PID)), value: 1234.5, unit: 'msg/s', ratio: 2, target: '>= 1', met: true }];`,
      );
      writeFileSync(path.join(fakeDist, 'scenarios', 'b-throws.js'), `export default async () => { throw new Error('scenario broke'); };`);
      writeFileSync(path.join(fakeDist, 'scenarios', 'c-dies.js'), `export default async () => { process.exit(7); };`);
      let status = 0;
      try {
        execFileSync(process.execPath, [path.join(fakeDist, 'run.js'), '--quick', '--out', path.join(dir, 'out')], {
          env: { ...process.env, PARENT_PID: String(process.pid) },
          stdio: 'pipe',
        });
      } catch (err) {
        status = (err as { status: number }).status;
      }
      expect(status).toBe(1); // failed modules make the exit code non-zero, after writing the report
      const report = JSON.parse(readFileSync(path.join(dir, 'out.json'), 'utf8')) as BenchReport;
      expect(report.quick).toBe(true);
      expect(report.runs.map((r) => [r.name, r.ok])).toEqual([
        ['a-good', true],
        ['b-throws', false],
        ['c-dies', false],
      ]);
      expect(report.results.map((r) => [r.scenario, r.case])).toEqual([
        ['good', 'quick=true pid-differs=true'],
        ['b-throws', 'FAILED'],
        ['c-dies', 'FAILED'],
      ]);
      expect(report.results[1]!.note).toBe('Error: scenario broke');
      expect(report.results[2]!.note).toMatch(/exited \(code 7\) without results/);
      const md = readFileSync(path.join(dir, 'out.md'), 'utf8');
      expect(md).toContain('| good | quick=true pid-differs=true | 1,235 | msg/s |  | 2.00× | >= 1 | yes |');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('THROUGHWAY_BROADWAY (Broadway measured in the same run)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tw-broadway-hook-'));
  const script = (name: string, body: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return file;
  };
  const withCommand = <T>(command: string | undefined, run: () => T): T => {
    const before = process.env.THROUGHWAY_BROADWAY;
    if (command === undefined) delete process.env.THROUGHWAY_BROADWAY;
    else process.env.THROUGHWAY_BROADWAY = command;
    try {
      return run();
    } finally {
      if (before === undefined) delete process.env.THROUGHWAY_BROADWAY;
      else process.env.THROUGHWAY_BROADWAY = before;
    }
  };

  it('is not asked when unset: the rows keep the issue\'s figures', () => {
    expect(withCommand(undefined, () => broadwayNow(BROADWAY_CONFIGS.demand100!, 'plain object', 3, 1000))).toBeUndefined();
  });

  it('passes configuration, kind, rounds and warm-up, and reads the last number of the last line', () => {
    const echo = script('echo.sh', 'echo "# config $1 data $2 rounds $3 warm-up $4"\necho "round 1: 1,000 msg/s"\necho "median: $1$3$4,614 msg/s"');
    expect(withCommand(echo, () => broadwayNow(BROADWAY_CONFIGS.demand100!, 'plain object', 3, 7))).toBe(237_614);
    expect(withCommand(echo, () => broadwayNow(BROADWAY_CONFIGS.demand100batch100x2!, 'integer', 2, 1_000_000))).toBe(421_000_000_614);
    const kinds = script('kind.sh', 'case "$2" in int) echo 1;; string) echo 2;; map) echo 3;; *) echo 0;; esac');
    expect(withCommand(kinds, () => ['integer', '200-byte JSON string', 'plain object'].map((k) => broadwayNow(BROADWAY_CONFIGS.default!, k as 'integer', 1, 0)))).toEqual([1, 2, 3]);
  });

  it('fails the scenario when the command fails or prints no figure', () => {
    expect(() => withCommand(script('none.sh', 'echo "median: n/a"'), () => broadwayNow(BROADWAY_CONFIGS.default!, 'integer', 1, 0))).toThrow(/printed no figure for configuration 1 int/);
    expect(() => withCommand(script('fails.sh', 'exit 3'), () => broadwayNow(BROADWAY_CONFIGS.default!, 'integer', 1, 0))).toThrow();
  });
});

