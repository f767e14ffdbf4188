// Shared by the packages' tests: fixture scripts run as real child processes (crash tests kill
// them with SIGKILL; exit tests wait for them to end on their own).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface Child {
  process: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout and stderr so far, interleaved, for failure messages. */
  output(): string;
}

/**
 * A runner of the fixture scripts in `fixtures` (a directory path): `runChild(script, arg)` starts
 * `node <fixtures>/<script> <JSON arg>` with stdout and stderr kept.
 *
 * @example
 * export const runChild = childRunner(fileURLToPath(new URL('./fixtures/', import.meta.url)))
 */
export function childRunner(fixtures: string): (script: string, arg: unknown) => Child {
  return (script, arg) => {
    const child = spawn(process.execPath, [join(fixtures, script), JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    return { process: child, exited, output: () => out };
  };
}

/** Waits for the child to end on its own; past `ms` it is killed (SIGKILL) and `killed` is true. */
export async function exitWithin(child: Child, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const first = await Promise.race([child.exited, late]);
  clearTimeout(timer);
  if (first !== 'late') return { ...first, killed: false };
  child.process.kill('SIGKILL');
  return { ...(await child.exited), killed: true };
}
