/**
 * What every chaos check shares: a seeded random source, temp places, child processes whose peak
 * memory is sampled from /proc, and the one-line result each check prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random as SeededRandom } from '../../examples/mystex-pizza/dist/prng.js';

/** The counts each check reports (absent: not meaningful for that check). */
export interface Counts {
  kills?: number;
  lost?: number;
  wronglyDead?: number;
  duplicates?: number;
  peakRssMb?: number;
  cases?: number;
  refused?: number;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  counts: Counts;
  /** What was run and, on failure, what went wrong. */
  note: string;
}

export interface CheckContext {
  seed: number;
  short: boolean;
  random: Random;
  /** Seconds left of the run's budget when the check starts. */
  secondsLeft: () => number;
}

export interface Check {
  name: string;
  /** Why the check is expected to fail at this commit (it then does not fail the run), or undefined. */
  expectedFailure?: string;
  run(context: CheckContext): Promise<CheckResult>;
}

/** The demo's seeded PRNG (mulberry32: one stream per seed), with a sample of distinct integers. */
export class Random extends SeededRandom {
  /** A sample of `k` distinct integers of [0, n), sorted. */
  sample(n: number, k: number): number[] {
    const picked = new Set<number>();
    while (picked.size < Math.min(k, n)) picked.add(this.int(0, n - 1));
    return [...picked].sort((a, b) => a - b);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A temp directory, removed by `cleanup`. */
export function tempPlace(tag: string): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `throughway-chaos-${tag}-`));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Peak resident set (VmHWM) of a live process in MB, or 0 once it is gone. */
export function peakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

export interface Child {
  process: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  /** The highest VmHWM seen so far (sampled every 100 ms while it runs, and on demand). */
  peakRssMb(): number;
}

/** Starts `node script args...`; stdout and stderr are kept; memory is sampled while it runs. */
export function startNode(script: string, args: string[], options: { env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Child {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  let peak = 0;
  const sample = () => {
    if (child.pid !== undefined) peak = Math.max(peak, peakRssMb(child.pid));
  };
  const timer = setInterval(sample, 100);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal });
    }),
  );
  return {
    process: child,
    exited,
    output: () => out,
    peakRssMb: () => {
      sample();
      return peak;
    },
  };
}

/** Kills a child with SIGKILL (sampling its memory first) and waits until it is gone. */
export async function killNow(child: Child): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  child.peakRssMb();
  child.process.kill('SIGKILL');
  return child.exited;
}

/** A script of this package's children (compiled next to this file). */
export function childScript(name: string): string {
  return fileURLToPath(new URL(`./children/${name}.js`, import.meta.url));
}

/** The local Postgres, trust auth on the unix socket (override with PG_URL). */
export const PG_BASE = process.env.PG_URL ?? 'postgres://postgres@/test?host=/var/run/postgresql';

/** Waits for `pred`, polling every 20 ms, up to `timeoutMs`; false if it never held. */
export async function waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** `a` minus `b`, as a count. */
export function missing<T>(a: Iterable<T>, b: Set<T>): number {
  let n = 0;
  for (const x of a) if (!b.has(x)) n++;
  return n;
}

/** What {@link killTwoInTurn} did: kills that landed, the peak RSS seen, and why a final worker failed. */
export interface KillInTurnResult {
  kills: number;
  peakRssMb: number;
  /** The end of both final workers' output when one of them did not exit 0. */
  failure?: string;
}

/**
 * Two workers on one queue, SIGKILLed one at a time (`victim(k)` after `pause(k)` ms, restarted at
 * once), `kills` times or until `workLeft()` says the queue is done; then both are killed and two
 * final workers (`start(true)`) run until the queue is empty and exit.
 */
export async function killTwoInTurn(
  start: (untilDone: boolean) => Child,
  plan: { kills: number; victim: (k: number) => number; pause: (k: number) => number; workLeft?: () => boolean },
): Promise<KillInTurnResult> {
  let peak = 0;
  let landed = 0;
  const workers: Child[] = [start(false), start(false)];
  for (let k = 0; k < plan.kills && (plan.workLeft?.() ?? true); k++) {
    const i = plan.victim(k);
    await sleep(plan.pause(k));
    peak = Math.max(peak, workers[i]!.peakRssMb());
    await killNow(workers[i]!);
    landed++;
    workers[i] = start(false);
  }
  // Both run on until the queue is empty; then each stops.
  for (const w of workers) await killNow(w);
  const a = start(true);
  const b = start(true);
  const [ea, eb] = await Promise.all([a.exited, b.exited]);
  peak = Math.max(peak, a.peakRssMb(), b.peakRssMb());
  const failure = ea.code !== 0 || eb.code !== 0 ? `a final worker failed:\n${a.output().slice(-1500)}\n${b.output().slice(-1500)}` : undefined;
  return { kills: landed, peakRssMb: peak, failure };
}
