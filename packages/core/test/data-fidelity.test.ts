// What a handler receives is what the structured clone of the producer's data gives, on both
// runtimes, whichever form carried it to the thread: calls whose data are JSON-exact objects go
// as one JSON text (Node 26 and later), any other call as the structured clone.
import { inspect } from 'node:util';
import { describe, expect, test } from 'vitest';
import { DummyProducer } from '@throughway/core';
import { RUNTIMES, uniqueName, useHarness } from './helpers.js';

const HANDLERS = new URL('./fixtures/inspect-data.ts', import.meta.url);

const asSeen = (values: unknown[]) => values.map((v) => inspect(structuredClone(v), { depth: 10 }));

describe.each(RUNTIMES)('data fidelity into handleMessage [%s]', (runtime) => {
  const h = useHarness(runtime);
  const start = () =>
    h.start({
      name: uniqueName(`fidelity-${runtime}`),
      handlers: HANDLERS,
      producer: { module: new DummyProducer() },
      processors: { default: { concurrency: 1, maxDemand: 40, minDemand: 20, runtime } },
    });

  test('a call of JSON-exact objects, strings, numbers and nulls arrives equal, an object two messages share included', async () => {
    const p = await start();
    const shared = { id: 9, tags: ['x'] };
    const values = [{ id: 1, name: 'margherita', price: 9.5, tags: ['veg', 'classic'], nested: { a: null, b: [1, { c: 'd' }] } }, { s: 'lone \ud800 surrogate', e: '', emoji: '🍕' }, 'a string', 42, null, true, [1, 2, 3], shared, shared];
    const { successful, failed } = await p.testBatch(values);
    expect(failed).toEqual([]);
    expect(successful.map((m) => m.data)).toEqual(asSeen(values));
  });

  test('a call holding values JSON would change arrives as the structured clone gives them', async () => {
    const p = await start();
    const values = [{ plain: 1 }, { at: new Date(1_700_000_000_000) }, { u: undefined }, { z: -0, n: NaN, i: -Infinity }, { m: new Map([[1, 'one']]), set: new Set(['a']) }, [1, , 3], { bytes: new Uint8Array([1, 2]) }, -0]; // eslint-disable-line no-sparse-arrays
    const { successful, failed } = await p.testBatch(values);
    expect(failed).toEqual([]);
    expect(successful.map((m) => m.data)).toEqual(asSeen(values));
  });

  test('a call holding a bigint (JSON.stringify would throw) arrives as the clone gives it', async () => {
    const p = await start();
    const values = [{ plain: 1 }, { big: 10n }, 7n];
    const { successful, failed } = await p.testBatch(values);
    expect(failed).toEqual([]);
    expect(successful.map((m) => m.data)).toEqual(asSeen(values));
  });
});


describe.each(RUNTIMES)('bytes through a batcher [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('a Uint8Array reaches handleBatch (and the acknowledger) as a Uint8Array and a Buffer as a Buffer, with their bytes', async () => {
    const p = await h.start({
      name: uniqueName(`bytes-${runtime}`),
      handlers: new URL('./fixtures/bytes-through.ts', import.meta.url),
      producer: { module: new DummyProducer() },
      processors: { default: { concurrency: 1, runtime } },
      batchers: { default: { batchSize: 10, batchTimeout: 50 } },
    });
    const values = [new Uint8Array(Buffer.from('a raw body, café')), 'buffer:made in handleMessage', 'u8:made as a Uint8Array', new Uint8Array(0), new Uint8Array(Buffer.alloc(5000, 'z')), 'buffer:keep: a Buffer back to the acknowledger', 'u8:keep: a Uint8Array back'];
    const { successful, failed } = await p.testBatch(values);
    expect(failed).toEqual([]);
    expect(successful.map((m) => m.data)).toEqual([
      { kind: 'Uint8Array', text: 'a raw body, café' },
      { kind: 'Buffer', text: 'made in handleMessage' },
      { kind: 'Uint8Array', text: 'made as a Uint8Array' },
      { kind: 'Uint8Array', text: '' },
      { kind: 'Uint8Array', text: 'z'.repeat(5000) },
      Buffer.from('keep: a Buffer back to the acknowledger'),
      new Uint8Array(Buffer.from('keep: a Uint8Array back')),
    ]);
    // and the acknowledger reads them as they left handleBatch: a Buffer, a plain Uint8Array
    expect(Buffer.isBuffer(successful[5]!.data)).toBe(true);
    expect(Object.getPrototypeOf(successful[6]!.data)).toBe(Uint8Array.prototype);
  });
});
