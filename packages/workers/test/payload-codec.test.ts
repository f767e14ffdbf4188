import { isDeepStrictEqual } from 'node:util';
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { concatBatches, datasAsJson, decodeValue, decodeValues, encodeValues, type EncodedValues } from '../src/payload-codec.js';

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
}

const shared = { id: 1 };
const cyclic: Record<string, unknown> = { name: 'loop' };
cyclic.self = cyclic;
const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
const withExtra = Object.assign([1, 2], { extra: 'kept by the clone' });
const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });

/** [label, data, metadata, the form it must take: 1 string, 2 v8, 3 number, 44 JSON (a comma), 5 JSON pair, 6 bytes, 8 bytes with metadata]. */
const J = 0x2c;
const cases: [string, unknown, Record<string, unknown>, number][] = [
  ['a string', '{"id":1}', {}, 1],
  ['an empty string', '', {}, 1],
  ['a lone surrogate (JSON escapes it; UTF-8 would not keep it)', 'a\ud800b', {}, J],
  ['an integer', 42, {}, 3],
  ['a float', 0.1, {}, 3],
  ['-0', -0, {}, 3],
  ['NaN', NaN, {}, 3],
  ['Infinity', Infinity, {}, 3],
  ['true', true, {}, J],
  ['null', null, {}, J],
  ['a plain object', { id: 7, name: 'pepperoni', price: 12.5, tags: ['a', 'b'], nested: { x: 1, y: 'two' } }, {}, J],
  ['an object holding a lone surrogate', { s: '\udc00' }, {}, J],
  ['a null-prototype object', nullProto, {}, J],
  ['an array of objects', [{ a: 1 }, { a: 2 }], {}, J],
  ['a string with metadata', 'x', { key: 'k', n: 1 }, 5],
  ['a number with metadata', 5, { attempt: 2 }, 5],
  ['an object with metadata', { id: 1 }, { source: 'q', at: null }, 5],
  ['undefined', undefined, {}, 2],
  ['an object holding undefined', { a: undefined }, {}, 2],
  ['an object holding -0', { a: -0 }, {}, 2],
  ['an object holding NaN', { a: NaN }, {}, 2],
  ['a Date', new Date(1_700_000_000_000), {}, 2],
  ['a Map', new Map([[1, 'one']]), {}, 2],
  ['a class instance', new Point(1, 2), {}, 2],
  ['a sparse array', sparse, {}, 2],
  ['an array with an extra property', withExtra, {}, 2],
  ['a bigint', 10n, {}, 2],
  ['a Uint8Array', new Uint8Array([1, 2, 3]), {}, 6],
  ['an empty Uint8Array', new Uint8Array(0), {}, 6],
  ['a Uint8Array viewing part of a larger buffer', new Uint8Array(new ArrayBuffer(16), 4, 3).fill(9), {}, 6],
  ['a Uint8Array with metadata', new Uint8Array([1]), { key: 'k', seq: 7, headers: { 'x-id': 'é' } }, 8],
  ['an empty Uint8Array with metadata', new Uint8Array(0), { key: '' }, 8],
  ['a Uint8Array with metadata JSON would change', new Uint8Array([1]), { at: new Date(0) }, 2],
  ['a Uint16Array', new Uint16Array([1, 65535]), {}, 2],
  ['a DataView', new DataView(new ArrayBuffer(4)), {}, 2],
  ['a cycle', cyclic, {}, 2],
  ['an object met twice', { a: shared, b: shared }, {}, 2],
  ['metadata holding a Date', 'x', { at: new Date(0) }, 2],
  ['data and metadata sharing an object', shared, { also: shared }, 2],
  ['a deep object (more than 64 objects)', { list: Array.from({ length: 100 }, (_, i) => ({ i })) }, {}, 2],
];

describe('payload codec', () => {
  it.each(cases)('%s decodes to what the structured clone gives, in its form', (_label, data, metadata, tag) => {
    const encoded = encodeValues([[data, metadata]]);
    expect(encoded.buffer[0]).toBe(tag);
    const [decoded] = decodeValues(encoded);
    const clone = structuredClone([data, metadata]);
    expect(isDeepStrictEqual(decoded, clone)).toBe(true);
    expect(Object.is(decoded![0], clone[0])).toBe(typeof data !== 'object' || data === null);
  });

  it('carries bytes as they are: a Uint8Array of its own (not a view into the batch buffer), a Buffer as a Buffer', () => {
    const body = new TextEncoder().encode('{"order":1,"customer":"cus_1"} café');
    const values: [unknown, Record<string, unknown>][] = [
      [body, {}],
      [Buffer.from('a pooled buffer'), {}],
      [Buffer.alloc(10_000, 7), {}],
      ['text between', {}],
      [new Uint8Array(0), {}],
    ];
    const encoded = encodeValues(values);
    expect(Array.from(encoded.offsets.slice(0, -1), (at) => encoded.buffer[at])).toEqual([6, 7, 7, 1, 6]);
    const decoded = decodeValues(encoded).map(([data]) => data as Uint8Array);
    expect(Object.getPrototypeOf(decoded[0])).toBe(Uint8Array.prototype);
    expect(Buffer.from(decoded[0]!).toString()).toBe('{"order":1,"customer":"cus_1"} café');
    expect([decoded[0]!.byteOffset, decoded[0]!.buffer.byteLength]).toEqual([0, body.length]);
    expect(Buffer.isBuffer(decoded[1])).toBe(true);
    expect(decoded[1]!.toString()).toBe('a pooled buffer');
    expect(Buffer.isBuffer(decoded[2])).toBe(true);
    expect(decoded[2]!.equals(Buffer.alloc(10_000, 7))).toBe(true);
    expect(decoded[3]).toBe('text between');
    expect(decoded[4]).toEqual(new Uint8Array(0));
    // with metadata
    const withMetadata = encodeValues([
      [Buffer.from('a buffer'), { subject: 'orders.eu', sequence: 12 }],
      [new Uint8Array([0, 255, 1]), { routingKey: 'r', redelivered: false }],
    ]);
    expect(Array.from(withMetadata.offsets.slice(0, -1), (at) => withMetadata.buffer[at])).toEqual([9, 8]);
    const [[b, bm], [u, um]] = decodeValues(withMetadata) as [Buffer, Record<string, unknown>][];
    expect(Buffer.isBuffer(b) && b.toString() === 'a buffer').toBe(true);
    expect(bm).toEqual({ subject: 'orders.eu', sequence: 12 });
    expect(Object.getPrototypeOf(u)).toBe(Uint8Array.prototype);
    expect([...u!]).toEqual([0, 255, 1]);
    expect(um).toEqual({ routingKey: 'r', redelivered: false });
    // one value alone reads the same
    const one = decodeValue(encoded.buffer, encoded.offsets[2]!, encoded.offsets[3]!)[0] as Buffer;
    expect(Buffer.isBuffer(one) && one.equals(Buffer.alloc(10_000, 7))).toBe(true);
    // a decoded value does not share memory with the encoded buffer
    decoded[0]![0] = 0;
    expect(encoded.buffer[encoded.offsets[0]! + 1]).toBe(body[0]);
  });

  it('writes all-text values (strings and JSON, ASCII or not) at the right offsets, and decodes a JSON run as one array', () => {
    const values: [unknown, Record<string, unknown>][] = [
      [{ id: 1, name: 'ascii' }, {}],
      [{ id: 2, name: 'café ☕ 🍕' }, {}],
      ['a plain string, ünïcödé', {}],
      [[1, 'two', { three: 3 }], {}],
      [{ id: 5 }, { attempt: 1 }],
      [{ id: 6, s: 'a\ud800b' }, {}],
      [{ id: 7 }, {}],
    ];
    const encoded = encodeValues(values);
    expect(Array.from(encoded.offsets.slice(0, -1), (at) => encoded.buffer[at])).toEqual([J, J, 1, J, 5, J, J]);
    values.forEach((v, i) => expect(isDeepStrictEqual(decodeValue(encoded.buffer, encoded.offsets[i]!, encoded.offsets[i + 1]!), structuredClone(v))).toBe(true));
    expect(isDeepStrictEqual(decodeValues(encoded), structuredClone(values))).toBe(true);
    // Each decoded value is its own object, as one parse per value would give.
    const decoded = decodeValues(encodeValues([[{ a: 1 }, {}], [{ a: 1 }, {}]]));
    expect(decoded[0]![0]).not.toBe(decoded[1]![0]);
    expect(decoded[0]![1]).not.toBe(decoded[1]![1]);
  });

  it('all-text values that are ASCII but one: wherever the one is (first, middle, last, alone), offsets and bytes are exact', () => {
    const ascii = (i: number): [unknown, Record<string, unknown>] => [{ id: i, name: `n${i}` }, {}];
    // 2-, 3- and 4-byte characters: a cut at the end of an ASCII-sized buffer must still be seen
    for (const odd of ['é', '☕', '🍕', 'xxé', 'ü'.repeat(40)]) {
      for (const at of [0, 2, 4]) {
        const values = [ascii(0), ascii(1), ascii(2), ascii(3), ascii(4)];
        values[at] = [{ id: at, name: odd }, {}];
        const encoded = encodeValues(values);
        expect(encoded.offsets.at(-1)).toBe(encoded.buffer.length);
        values.forEach((v, i) => expect(isDeepStrictEqual(decodeValue(encoded.buffer, encoded.offsets[i]!, encoded.offsets[i + 1]!), v), `${odd} at ${at}, value ${i}`).toBe(true));
      }
      const alone = encodeValues([[odd, {}]]);
      expect(alone.buffer.length).toBe(1 + Buffer.byteLength(odd));
      expect(decodeValue(alone.buffer, 0, alone.buffer.length)[0]).toBe(odd);
    }
    // all ASCII: exactly one byte a character plus the tags
    const plain = encodeValues([ascii(1), ascii(2)]);
    expect(plain.buffer.length).toBe(2 + JSON.stringify(ascii(1)[0]).length + JSON.stringify(ascii(2)[0]).length);
  });

  it('puts values and offsets in one ArrayBuffer, so that moving it once moves both (text and mixed forms)', async () => {
    const text: [unknown, Record<string, unknown>][] = [[{ id: 1 }, {}], ['two', {}], [{ id: 3, name: 'café' }, {}]];
    const mixed: [unknown, Record<string, unknown>][] = [[1, {}], [{ id: 2 }, {}], [new Date(0), {}], ['four', { k: 1 }], ['ab', {}]];
    for (const values of [text, mixed]) {
      const encoded = encodeValues(values);
      expect(encoded.offsets.buffer).toBe(encoded.buffer.buffer);
      // After the values' bytes, 4-byte aligned: writing an offset never touches a value.
      expect(encoded.offsets.byteOffset).toBeGreaterThanOrEqual(encoded.buffer.byteOffset + encoded.buffer.byteLength);
      expect(encoded.offsets.byteOffset % 4).toBe(0);
      expect(encoded.offsets).toHaveLength(values.length + 1);
      const { port1, port2 } = new MessageChannel();
      const received = new Promise<EncodedValues>((resolve) => port2.once('message', resolve));
      port1.postMessage(encoded, [encoded.buffer.buffer as ArrayBuffer]);
      const moved = await received;
      port1.close();
      expect(encoded.buffer.byteLength).toBe(0); // detached here: moved, not copied
      expect(encoded.offsets.length).toBe(0);
      expect(isDeepStrictEqual(decodeValues(moved), structuredClone(values))).toBe(true);
    }
  });

  it('keeps shared and circular objects shared, as the clone does', () => {
    const [[both], [loop]] = decodeValues(encodeValues([[{ a: shared, b: shared }, {}], [cyclic, {}]])) as [[Record<string, unknown>], [Record<string, unknown>]];
    expect(both.a).toBe(both.b);
    expect(loop.self).toBe(loop);
  });

  it('decodes a mix of forms by slice, after the main thread regroups them into a batch', () => {
    const values: [unknown, Record<string, unknown>][] = cases.map(([, data, metadata]) => [data, metadata]);
    const encoded = encodeValues(values);
    for (let i = 0; i < values.length; i++) {
      expect(isDeepStrictEqual(decodeValue(encoded.buffer, encoded.offsets[i]!, encoded.offsets[i + 1]!), structuredClone(values[i]))).toBe(true);
    }
    // Every other value, as a batch key's messages would be picked out of a task's buffer.
    const picked = values.map((_, i) => i).filter((i) => i % 2 === 0);
    const slice = (i: number) => ({ buffer: encoded.buffer, start: encoded.offsets[i]!, end: encoded.offsets[i + 1]! });
    const [batch] = concatBatches([picked.map(slice)]);
    const decoded = decodeValues(batch!);
    expect(decoded).toHaveLength(picked.length);
    picked.forEach((i, k) => expect(isDeepStrictEqual(decoded[k], structuredClone(values[i]))).toBe(true));
    // Several batches of one call share one buffer, each a view of its own region.
    const odd = values.map((_, i) => i).filter((i) => i % 2 === 1);
    const [first, second] = concatBatches([picked.map(slice), odd.map(slice)]);
    expect(first!.buffer.buffer).toBe(second!.buffer.buffer);
    expect(second!.buffer.byteOffset).toBe(first!.buffer.byteLength);
    picked.forEach((i, k) => expect(isDeepStrictEqual(decodeValues(first!)[k], structuredClone(values[i]))).toBe(true));
    odd.forEach((i, k) => expect(isDeepStrictEqual(decodeValues(second!)[k], structuredClone(values[i]))).toBe(true));
  });
});

describe('a processor call\'s data as one JSON text (datasAsJson)', () => {
  // The cases without metadata, each beside a plain object so that the call holds one.
  const dataOnly = cases.filter(([, , metadata]) => Object.keys(metadata).length === 0);
  it.each(dataOnly)('%s: JSON text only when JSON carries it exactly, and then it parses to the clone', (_label, data, _metadata, tag) => {
    const datas = [{ id: 1 }, data];
    const json = datasAsJson(datas);
    const numberJsonKeeps = tag === 3 && Number.isFinite(data) && !Object.is(data, -0);
    if (tag === 2 || tag === 6 || tag === 8 || (tag === 3 && !numberJsonKeeps)) {
      expect(json).toBeUndefined();
    } else {
      expect(json).toBeTypeOf('string');
      expect(isDeepStrictEqual(JSON.parse(json!), structuredClone(datas))).toBe(true);
    }
  });

  it('leaves calls without objects to the clone (it copies strings and numbers cheaper)', () => {
    expect(datasAsJson(['a', 'b'])).toBeUndefined();
    expect(datasAsJson([1, 2.5, 'c', true, null])).toBeUndefined();
    expect(datasAsJson([])).toBeUndefined();
  });

  it('gives each message its own copy of an object two messages share', () => {
    const parsed = JSON.parse(datasAsJson([shared, shared])!) as Record<string, unknown>[];
    expect(parsed).toEqual([{ id: 1 }, { id: 1 }]);
    expect(parsed[0]).not.toBe(parsed[1]);
  });

  it('falls back for the whole call when one value is not exact', () => {
    expect(datasAsJson([{ a: 1 }, { b: 2 }, undefined])).toBeUndefined();
    expect(datasAsJson([{ a: 1 }, { at: new Date(0) }])).toBeUndefined();
    expect(datasAsJson([{ a: 1 }, () => 1])).toBeUndefined();
  });
});

