/**
 * Child-process entry: the parent (run.ts) forks one of these per scenario module, sends it
 * { file, options, prior } over IPC and gets back { kind: 'results' } or { kind: 'error' }.
 */
import { pathToFileURL } from 'node:url';
import type { BenchResult, Scenario, ScenarioOptions } from '../scenario.js';
import { setPriorResults } from './context.js';

export interface ChildRequest {
  file: string;
  options: ScenarioOptions;
  prior: BenchResult[];
}
export type ChildReply =
  | { kind: 'results'; results: BenchResult[] }
  | { kind: 'error'; error: { name: string; message: string; stack?: string } };

function reply(message: ChildReply, code: number): void {
  if (!process.send) {
    console.error('bench child: no IPC channel');
    process.exit(2);
  }
  // Exit once the reply is flushed: a scenario may leave threads or timers behind.
  process.send(message, undefined, {}, () => process.exit(code));
}

process.once('message', (request: ChildRequest) => {
  void (async () => {
    try {
      setPriorResults(request.prior);
      const mod = (await import(pathToFileURL(request.file).href)) as { default?: Scenario };
      if (typeof mod.default !== 'function') throw new Error(`${request.file} has no default-exported Scenario function`);
      const results = await mod.default(request.options);
      if (!Array.isArray(results)) throw new Error('the scenario did not return an array of BenchResult');
      reply({ kind: 'results', results }, 0);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      reply({ kind: 'error', error: { name: e.name, message: e.message, stack: e.stack } }, 1);
    }
  })();
});
