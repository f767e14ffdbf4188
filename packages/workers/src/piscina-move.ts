/**
 * What a Piscina task module needs of Piscina (`move` and its two symbols) without loading the
 * pool's code into every processor thread. `import { Piscina } from 'piscina'` evaluates the whole
 * package (pool, queues, balancer, histograms: a dozen modules) in each thread, where only the
 * task-side half (`piscina/dist/worker.js`) runs: about a sixth of a processor thread's start-up.
 * Piscina's own thread entry already loaded `common.js` and `symbols.js`; marking a value movable
 * with that same `common.js` is what `Piscina.move` does for a value that is already transferable
 * (it carries both symbols). Should a Piscina release lay its files out otherwise, this falls back
 * to loading the package.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Piscina as PiscinaClass } from 'piscina';

type TaskSide = Pick<typeof PiscinaClass, 'move' | 'transferableSymbol' | 'valueSymbol'>;

const require = createRequire(import.meta.url);

function taskSide(): TaskSide {
  try {
    const dist = path.dirname(require.resolve('piscina'));
    const common = require(path.join(dist, 'common.js')) as { markMovable?: unknown };
    const symbols = require(path.join(dist, 'symbols.js')) as { kTransferable?: unknown; kValue?: unknown };
    const markMovable = common.markMovable;
    const { kTransferable, kValue } = symbols;
    if (typeof markMovable === 'function' && typeof kTransferable === 'symbol' && typeof kValue === 'symbol') {
      const move = (value: object): object => {
        if (!(kTransferable in value) || !(kValue in value)) throw new TypeError('piscina-move: only values that carry Piscina.transferableSymbol and Piscina.valueSymbol');
        markMovable(value);
        return value;
      };
      return { move: move as TaskSide['move'], transferableSymbol: kTransferable as TaskSide['transferableSymbol'], valueSymbol: kValue as TaskSide['valueSymbol'] };
    }
  } catch {
    // A layout this does not know: the package itself, below.
  }
  return (require('piscina') as { Piscina: TaskSide }).Piscina;
}

/** `Piscina.move`, `Piscina.transferableSymbol` and `Piscina.valueSymbol`, for task modules. */
export const Piscina: TaskSide = taskSide();
