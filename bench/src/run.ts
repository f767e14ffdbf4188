/**
 * `pnpm bench [--quick] [--only <name>[,<name>...]] [--out <path prefix>] [--timeout <seconds>]`
 *
 * Runs every scenario module in bench/dist/scenarios/*.js, each in its own child process (so one
 * scenario's threads and heap do not disturb the next), `baselines` first so that later scenarios can
 * quote same-run baselines. Writes <out>.json and <out>.md (default bench/results/latest; with
 * --only, bench/results/partial) and prints the table. A scenario that throws, crashes or times out
 * becomes a FAILED row; the run goes on.
 */
import { fork } from 'node:child_process';
import os from 'node:os';
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult, ScenarioOptions } from './scenario.js';
import type { ChildReply, ChildRequest } from './harness/child.js';
import { machineInfo } from './harness/machine.js';
import { type BenchReport, type ScenarioRun, failedResult, machineLine, markdownReport, markdownTable } from './harness/table.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // bench/dist
const scenariosDir = path.join(here, 'scenarios');
const childEntry = path.join(here, 'harness', 'child.js');
const benchRoot = path.resolve(here, '..');

/** Scenario modules that quote another module's results and need it to run first. */
const NEEDS: Record<string, string[]> = {
  'pipeline-noop': ['baselines'],
  'pipeline-batcher': ['baselines'],
};

interface Args {
  quick: boolean;
  only?: string[];
  out?: string;
  timeoutSec?: number;
}

function usage(): never {
  console.log('usage: pnpm bench [--quick] [--only <name>[,<name>...]] [--out <path prefix>] [--timeout <seconds>]');
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) usage();
      return v;
    };
    if (a === '--') continue;
    else if (a === '--quick') args.quick = true;
    else if (a === '--only' || a.startsWith('--only=')) (args.only ??= []).push(...value().split(',').map((s) => s.trim()).filter(Boolean));
    else if (a === '--out' || a.startsWith('--out=')) args.out = value();
    else if (a === '--timeout' || a.startsWith('--timeout=')) args.timeoutSec = Number(value());
    else if (a === '--help' || a === '-h') usage();
    else {
      console.error(`unknown argument: ${a}`);
      usage();
    }
  }
  return args;
}

function listScenarios(): string[] {
  const names = readdirSync(scenariosDir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .sort();
  // baselines first: others quote its results.
  return [...names.filter((n) => n === 'baselines'), ...names.filter((n) => n !== 'baselines')];
}

function select(all: string[], only: string[] | undefined): string[] {
  if (!only) return all;
  const wanted = new Set<string>();
  for (const o of only) {
    const name = o.replace(/\.(js|ts)$/, '');
    const matches = all.filter((n) => n === name || n.startsWith(name));
    if (matches.length === 0) {
      console.error(`--only ${o}: no scenario module matches (have: ${all.join(', ')})`);
      process.exit(2);
    }
    for (const m of matches) {
      for (const dep of NEEDS[m] ?? []) if (all.includes(dep)) wanted.add(dep);
      wanted.add(m);
    }
  }
  return all.filter((n) => wanted.has(n));
}

function runOne(name: string, options: ScenarioOptions, prior: BenchResult[], timeoutMs: number): Promise<{ run: ScenarioRun; results: BenchResult[] }> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let reply: ChildReply | undefined;
    const child = fork(childEntry, [], {
      cwd: benchRoot,
      serialization: 'advanced', // NaN and Infinity survive
      execArgv: process.execArgv, // no --expose-gc: worker threads inherit execArgv and reject it
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const durationMs = performance.now() - started;
      if (!error && reply?.kind === 'results') {
        resolve({ run: { name, ok: true, durationMs }, results: reply.results });
      } else {
        const message = error ?? (reply?.kind === 'error' ? `${reply.error.name}: ${reply.error.message}` : 'no results');
        if (reply?.kind === 'error' && reply.error.stack) console.error(reply.error.stack);
        resolve({ run: { name, ok: false, durationMs, error: message }, results: [failedResult(name, message)] });
      }
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(`timed out after ${Math.round(timeoutMs / 1000)} s`);
    }, timeoutMs);
    child.on('message', (m: ChildReply) => {
      reply = m;
    });
    child.on('error', (err) => finish(`could not run the child process: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (reply) finish();
      else finish(`child process exited (${signal ? `signal ${signal}` : `code ${code}`}) without results`);
    });
    const request: ChildRequest = { file: path.join(scenariosDir, `${name}.js`), options, prior };
    child.send(request);
  });
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const all = listScenarios();
  const names = select(all, args.only);
  const options: ScenarioOptions = { quick: args.quick };
  const timeoutMs = (args.timeoutSec ?? (args.quick ? 60 : 180)) * 1000;
  const machine = machineInfo();
  console.log(`Throughway bench (${args.quick ? 'quick' : 'full'}) on ${machineLine(machine)}`);
  console.log(`scenario modules: ${names.join(', ')}\n`);

  const started = performance.now();
  const runs: ScenarioRun[] = [];
  const results: BenchResult[] = [];
  for (const name of names) {
    console.log(`--- ${name} ---`);
    const { run, results: rs } = await runOne(name, options, results, timeoutMs);
    runs.push(run);
    results.push(...rs);
    console.log(markdownTable(rs));
    console.log(`(${name}: ${run.ok ? 'ok' : `FAILED: ${run.error}`}, ${(run.durationMs / 1000).toFixed(1)} s)\n`);
  }
  const report: BenchReport = {
    machine: { ...machine, loadAverageEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    quick: args.quick,
    ...(args.only ? { only: names } : {}),
    durationMs: Math.round(performance.now() - started),
    runs: runs.map((r) => ({ ...r, durationMs: Math.round(r.durationMs) })),
    results,
  };
  const outPrefix = path.resolve(args.out ?? path.join(benchRoot, 'results', args.only ? 'partial' : 'latest'));
  mkdirSync(path.dirname(outPrefix), { recursive: true });
  const md = markdownReport(report);
  writeAtomically(`${outPrefix}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeAtomically(`${outPrefix}.md`, md);
  console.log(md);
  console.log(`wrote ${path.relative(process.cwd(), outPrefix)}.json and .md`);
  if (runs.some((r) => !r.ok)) process.exitCode = 1;
}

await main();
