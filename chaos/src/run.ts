/**
 * `pnpm chaos`: the attacks of issue 9 as a repeatable suite. Prints one line per check with its
 * counts (kills, lost, wrongly dead-lettered, duplicates, peak RSS) and exits 1 if a check failed
 * that is not marked as expected to fail.
 *
 * Usage: pnpm chaos [--seed N] [--budget SECONDS] [--short] [--only NAME[,NAME...]]
 *   --seed    picks the kill moments, the poison rows and the fuzzed values (default 1)
 *   --budget  seconds the whole run may take; checks that would start after it are skipped
 *             (reported as SKIP, and the run fails) (default 3600, 240 with --short)
 *   --short   the CI version: smaller queues and fewer kills, under 3 minutes
 *   --only    run only the checks whose names start with one of these
 */
import { exactlyOnce } from './checks/exactly-once.js';
import { fuzz } from './checks/fuzz.js';
import { hostileValues } from './checks/hostile-values.js';
import { killLoop } from './checks/kill-loop.js';
import { payloads } from './checks/payloads.js';
import { poison } from './checks/poison.js';
import { twoProcesses } from './checks/two-processes.js';
import { Random, type Check, type CheckResult, type Counts } from './util.js';

interface Args {
  seed: number;
  budget: number;
  short: boolean;
  only: string[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seed: 1, budget: NaN, short: false, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? '';
    if (flag === '--short') args.short = true;
    else if (flag === '--seed') args.seed = Number(value());
    else if (flag === '--budget') args.budget = Number(value());
    else if (flag === '--only') args.only = value().split(',').filter(Boolean);
    else throw new Error(`unknown argument ${argv[i]} (known: --seed N, --budget SECONDS, --short, --only NAMES)`);
  }
  if (!Number.isSafeInteger(args.seed) || args.seed < 0) throw new Error('--seed must be a non-negative integer');
  if (Number.isNaN(args.budget)) args.budget = args.short ? 240 : 3600;
  if (!(args.budget > 0)) throw new Error('--budget must be a positive number of seconds');
  return args;
}

/** The checks, in order. */

const CHECKS: Check[] = [
  fuzz('sqlite'),
  hostileValues(),
  killLoop('sqlite', { full: { events: 200_000, kills: 20 }, short: { events: 20_000, kills: 3 } }),
  killLoop('postgres', { full: { events: 200_000, kills: 20 }, short: { events: 20_000, kills: 2 } }),
  poison(),
  twoProcesses(),
  exactlyOnce(),
  payloads(),
  fuzz('core'),
];

function countsText(c: Counts): string {
  const parts: string[] = [];
  if (c.cases !== undefined) parts.push(`cases=${c.cases}`, `refused=${c.refused ?? 0}`);
  if (c.kills !== undefined) parts.push(`kills=${c.kills}`);
  if (c.lost !== undefined) parts.push(`lost=${c.lost}`);
  if (c.wronglyDead !== undefined) parts.push(`wrongly_dead=${c.wronglyDead}`);
  if (c.duplicates !== undefined) parts.push(`duplicates=${c.duplicates}`);
  if (c.peakRssMb !== undefined) parts.push(`peak_rss=${c.peakRssMb}MB`);
  return parts.join(' ');
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const secondsLeft = () => args.budget - (Date.now() - started) / 1000;
  const checks = CHECKS.filter((c) => args.only.length === 0 || args.only.some((o) => c.name.startsWith(o)));
  console.log(`chaos: seed ${args.seed}, budget ${args.budget} s${args.short ? ', short' : ''}, ${checks.length} checks`);
  let failed = 0;
  for (const check of checks) {
    if (secondsLeft() <= 0) {
      console.log(`SKIP  ${check.name.padEnd(22)} the budget of ${args.budget} s is spent`);
      failed++;
      continue;
    }
    if (check.expectedFailure && args.short) {
      // Expected to fail, and slow while it does (each case that starts threads is killed after
      // a timeout): the CI version does not spend its budget, or the shared machine, on it.
      console.log(`XFAIL ${check.name.padEnd(22)} not run with --short (expected to fail: ${check.expectedFailure})`);
      continue;
    }
    const t0 = Date.now();
    let result: CheckResult;
    try {
      // Each check draws from its own stream: adding a check does not move another's moments.
      const random = new Random(args.seed * 7919 + check.name.length * 104729 + check.name.charCodeAt(check.name.length - 1));
      result = await check.run({ seed: args.seed, short: args.short, random, secondsLeft });
    } catch (error) {
      result = { name: check.name, ok: false, counts: {}, note: `threw: ${(error as Error)?.stack ?? String(error)}` };
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    const status = result.ok ? (check.expectedFailure ? 'XPASS' : 'PASS ') : check.expectedFailure ? 'XFAIL' : 'FAIL ';
    if (!result.ok && !check.expectedFailure) failed++;
    const why = !result.ok && check.expectedFailure ? ` (expected: ${check.expectedFailure})` : '';
    console.log(`${status} ${check.name.padEnd(22)} ${countsText(result.counts)}  [${secs} s] ${result.note}${why}`);
  }
  console.log(`chaos: ${failed === 0 ? 'ok' : `${failed} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)} s (seed ${args.seed})`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
