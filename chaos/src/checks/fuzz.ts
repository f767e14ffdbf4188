/**
 * Fuzzed options: every case (fuzz-cases.ts) must be refused with a coded ThroughwayError
 * (ERR_THROUGHWAY_INVALID_OPTION) that names the option, and nothing may start. Cases run in a
 * child process, so that one that starts threads without bound or crashes the process (as
 * `resourceLimits.stackSizeMb: 2**53` once did) is counted and does not take the suite down.
 */
import { childScript, startNode, sleep, tempPlace, type Check, type CheckContext, type CheckResult } from '../util.js';
import { fuzzCases, type FuzzGroup } from './fuzz-cases.js';

/**
 * A case that has not answered after this long started something. Short: a case that starts
 * threads without bound (`concurrency: 1e12`) costs the shared machine ~0.1 GB a second.
 */
const CASE_TIMEOUT_MS = { short: 4000, full: 10_000 };
/** A child that has not started its first case after this long is stuck (timed apart from cases). */
const STARTUP_TIMEOUT_MS = 60_000;

export function fuzz(group: FuzzGroup, expectedFailure?: string): Check {
  return {
    name: `fuzz-options/${group}`,
    expectedFailure,
    async run(context: CheckContext): Promise<CheckResult> {
      const cases = fuzzCases(context.seed, group);
      const tmp = tempPlace(`fuzz-${group}`);
      const failures: string[] = [];
      let refused = 0;
      let peak = 0;
      try {
        let from = 0;
        while (from < cases.length) {
          const child = startNode(childScript('fuzz-run'), [JSON.stringify({ seed: context.seed, group, from, dir: tmp.dir })], { nodeArgs: ['--max-old-space-size=512'] });
          let lastAnswered = from - 1;
          let inFlight = -1;
          /** When the case in flight started (a child's start-up is not timed as a case). */
          let inFlightSince = Date.now();
          const seen = new Set<number>();
          const read = () => {
            for (const line of child.output().split('\n')) {
              if (!line.startsWith('{"i":')) continue;
              const r = JSON.parse(line) as { i: number; start?: boolean; code?: string | null; started?: boolean; message?: string };
              if (r.start) {
                if (inFlight !== r.i && !seen.has(r.i)) inFlightSince = Date.now();
                inFlight = seen.has(r.i) ? inFlight : r.i;
                continue;
              }
              if (seen.has(r.i)) continue;
              seen.add(r.i);
              lastAnswered = r.i;
              inFlight = -1;
              const c = cases[r.i]!;
              const named = (r.message ?? '').includes(c.path.split('.').at(-1)!);
              if (r.code === 'ERR_THROUGHWAY_INVALID_OPTION' && !r.started && named) refused++;
              else failures.push(`${c.target} ${c.path}=${c.label}: ${r.started ? 'started' : `refused with ${r.code ?? 'no code'}${named ? '' : ' without naming the option'}`}`);
            }
          };
          let timedOut = false;
          const spawnedAt = Date.now();
          for (;;) {
            const exited = await Promise.race([child.exited.then(() => true), sleep(100).then(() => false)]);
            read();
            if (exited) break;
            const limit = CASE_TIMEOUT_MS[context.short ? 'short' : 'full'];
            const stuck = inFlight >= 0 ? Date.now() - inFlightSince > limit : Date.now() - spawnedAt > STARTUP_TIMEOUT_MS;
            if (stuck) {
              timedOut = true;
              child.process.kill('SIGKILL');
              await child.exited;
              break;
            }
          }
          peak = Math.max(peak, child.peakRssMb());
          if (lastAnswered >= cases.length - 1) break;
          const culprit = inFlight >= 0 ? inFlight : lastAnswered + 1;
          const c = cases[culprit]!;
          failures.push(`${c.target} ${c.path}=${c.label}: ${timedOut ? 'hung (started something)' : 'crashed the process'}`);
          from = culprit + 1;
        }
      } finally {
        tmp.cleanup();
      }
      const note = `${cases.length} cases` + (failures.length > 0 ? `; not refused: ${failures.slice(0, 8).join('; ')}${failures.length > 8 ? `; and ${failures.length - 8} more` : ''}` : '');
      return { name: this.name, ok: failures.length === 0, counts: { cases: cases.length, refused, peakRssMb: peak }, note };
    },
  };
}
