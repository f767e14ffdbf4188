import { deserialize, serialize } from 'node:v8';

/**
 * Processed messages travel from a processor thread to a batch worker through the main thread,
 * which must not parse them. Each message becomes a byte slice of one buffer per task; the main
 * thread only copies slices into a batch buffer.
 *
 * The v8 serializer is exact but costs microseconds per call whatever the value (a fresh
 * serializer, a header, a buffer), and a batch of small values pays it per message. So a value
 * that JSON carries exactly takes a cheaper form: a string or a number with no metadata as
 * itself, a plain JSON-safe value as JSON text. "Exactly" means that decoding gives what the
 * structured clone of the value would give: anything JSON would change (undefined, -0, NaN,
 * a Date, a class instance, a sparse array, an object met twice, a lone surrogate) takes the
 * v8 path.
 */
const TAG_STRING = 1;
const TAG_V8 = 2;
const TAG_NUMBER = 3;
/**
 * JSON of the data; metadata `{}`. The tag is a comma so that a run of such values in a batch
 * buffer reads `,{…},{…},{…}`: with `[` for its first comma and a `]` it is one JSON array, which
 * the batch worker parses in one call instead of one per value.
 */
const TAG_JSON = 0x2c;
/** JSON of `[data, metadata]`. */
const TAG_JSON_PAIR = 5;
/**
 * The bytes of a plain Uint8Array (a message body from a broker or a BLOB column), metadata
 * `{}`: decoded as a Uint8Array of its own, as the clone gives it. Through the v8 serializer
 * each cost the two threads ~4-5 µs (a serializer, a host-object header, a copy at each end).
 */
const TAG_BYTES = 6;
/** The same for a Buffer, decoded as a Buffer (as the v8 serializer gave it). */
const TAG_BUFFER = 7;
/**
 * Bytes with metadata JSON carries exactly (a broker's routing key, a subject, a sequence): the
 * metadata's UTF-8 length (4 bytes, little-endian), its JSON, then the bytes. TAG_BYTES_META
 * decodes to a Uint8Array, TAG_BUFFER_META to a Buffer.
 */
const TAG_BYTES_META = 8;
const TAG_BUFFER_META = 9;

/**
 * Objects a value may hold and still take the JSON path (the check is quadratic in them); a
 * bigger value pays the v8 serializer's fixed cost over many bytes.
 */
const MAX_JSON_OBJECTS = 64;

export interface EncodedValues {
  buffer: Uint8Array;
  /**
   * `offsets[i]..offsets[i + 1]` is value i. From `encodeValues`, a view of the same ArrayBuffer as
   * `buffer` (after its bytes): an answer moves one buffer, not two (each ArrayBuffer moved costs
   * both threads a few µs, as much as the rest of a small answer).
   */
  offsets: Uint32Array;
}

/**
 * One ArrayBuffer for `bytes` bytes of values and the `n + 1` offsets after them (4-byte aligned).
 * Not zero-filled: the caller writes every byte it hands on.
 */
function valuesBuffer(bytes: number, n: number): { buffer: Buffer; offsets: Uint32Array } {
  const at = (bytes + 3) & ~3;
  const buffer = Buffer.allocUnsafeSlow(at + 4 * (n + 1));
  const offsets = new Uint32Array(buffer.buffer, buffer.byteOffset + at, n + 1);
  offsets[0] = 0;
  return { buffer, offsets };
}

export interface Slice {
  buffer: Uint8Array;
  start: number;
  end: number;
}

/** True for `{}`: checked per message on hot paths, so no Object.keys allocation. */
export function isEmpty(metadata: Record<string, unknown>): boolean {
  for (const _ in metadata) return false;
  return true;
}

/**
 * True if `JSON.parse(JSON.stringify(value))` equals the structured clone of `value`. `seen`
 * collects the objects met, so that a shared or circular object (which the clone keeps and
 * JSON would not) fails the check.
 */
function jsonExact(value: unknown, seen: object[]): boolean {
  if (typeof value !== 'object') {
    // JSON escapes a lone surrogate and parses it back: any string is exact.
    return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value) && (value !== 0 || 1 / value > 0));
  }
  if (value === null) return true;
  if (seen.length >= MAX_JSON_OBJECTS) return false;
  for (let i = 0; i < seen.length; i++) if (seen[i] === value) return false;
  seen.push(value);
  if (Array.isArray(value)) {
    const n = value.length;
    for (let i = 0; i < n; i++) {
      const v: unknown = value[i];
      if ((v === undefined && !(i in value)) || !jsonExact(v, seen)) return false;
    }
    // Extra own properties on an array: the clone keeps them, JSON does not.
    return Object.keys(value).length === n;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  // Own enumerable string keys: what both JSON and the structured clone copy. `for...in` also
  // visits enumerable keys inherited from a polluted Object.prototype: checking those too can only
  // send a value to the v8 path, never let a wrong one through. (~30% cheaper than Object.keys.)
  for (const key in value) if (!jsonExact((value as Record<string, unknown>)[key], seen)) return false;
  return true;
}

/**
 * A processor call's data as one JSON array text, when the call holds objects and JSON carries
 * every value exactly (see `jsonExact`; each value on its own, so an object two messages share
 * reaches the thread as two copies, as two separate deliveries would). Undefined otherwise: the
 * structured clone then carries the data as it is. Strings and numbers alone clone cheaper than
 * they stringify, so a call without objects is left to the clone.
 */
export function datasAsJson(datas: readonly unknown[]): string | undefined {
  let objects = false;
  for (let i = 0; i < datas.length; i++) {
    const value = datas[i];
    if (!jsonExact(value, [])) return undefined;
    if (typeof value === 'object' && value !== null) objects = true;
  }
  return objects ? JSON.stringify(datas) : undefined;
}

/** `String.prototype.isWellFormed` (Node 20+; not in the ES2023 lib the build targets). */
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** TAG_BYTES for a plain Uint8Array, TAG_BUFFER for a Buffer, 0 for anything else (another view, a subclass). */
function bytesTag(data: unknown): number {
  if (typeof data !== 'object' || data === null) return 0;
  const proto: unknown = Object.getPrototypeOf(data);
  if (proto === Uint8Array.prototype) return TAG_BYTES;
  return proto === Buffer.prototype ? TAG_BUFFER : 0;
}

function bytesWithMetadata(data: Uint8Array, metadata: Record<string, unknown>): Buffer {
  const json = JSON.stringify(metadata);
  const jsonBytes = Buffer.byteLength(json);
  const body = Buffer.allocUnsafe(4 + jsonBytes + data.byteLength);
  body.writeUInt32LE(jsonBytes, 0);
  body.write(json, 4, 'utf8');
  body.set(data, 4 + jsonBytes);
  return body;
}

export function encodeValues(values: [unknown, Record<string, unknown>][]): EncodedValues {
  const n = values.length;
  // First pass picks each value's form: text (a string, JSON) or bytes (a number, raw bytes, v8). When every
  // value is text and some are JSON (short texts the stringifier just made), they go one after
  // the other into one buffer sized for ASCII (see encodeText). Otherwise each body is sized and
  // written on its own.
  const tags = new Uint8Array(n);
  const bodies: (string | Uint8Array | undefined)[] = new Array(n);
  let allText = true;
  let anyJson = false;
  for (let i = 0; i < n; i++) {
    const [data, metadata] = values[i]!;
    const noMetadata = isEmpty(metadata);
    const bytes = bytesTag(data);
    let tag: number;
    let body: string | Uint8Array | undefined;
    if (noMetadata && typeof data === 'string' && isWellFormed(data)) {
      tag = TAG_STRING;
      body = data;
    } else if (noMetadata && typeof data === 'number') {
      tag = TAG_NUMBER;
      allText = false;
    } else if (bytes !== 0 && noMetadata) {
      tag = bytes;
      body = data as Uint8Array;
      allText = false;
    } else if (bytes !== 0 && jsonExact(metadata, [])) {
      tag = bytes === TAG_BYTES ? TAG_BYTES_META : TAG_BUFFER_META;
      body = bytesWithMetadata(data as Uint8Array, metadata);
      allText = false;
    } else {
      const seen: object[] = [];
      if (jsonExact(data, seen) && (noMetadata || jsonExact(metadata, seen))) {
        tag = noMetadata ? TAG_JSON : TAG_JSON_PAIR;
        body = noMetadata ? JSON.stringify(data) : JSON.stringify([data, metadata]);
        anyJson = true;
      } else {
        tag = TAG_V8;
        body = serialize([data, metadata]);
        allText = false;
      }
    }
    tags[i] = tag;
    bodies[i] = body;
  }
  return (allText && anyJson ? encodeText(tags, bodies as string[]) : undefined) ?? encodeMixed(values, tags, bodies);
}

/**
 * Every body is a well-formed string (the JSON of any value is). Written one by one into a buffer
 * sized as if all were ASCII (one byte a character), which the JSON of ASCII data is: joining them
 * first and sizing the joined text cost ~1 µs a 200-byte value more (2,500 parsed objects:
 * 1.9-2.2 µs a value against 1.1-1.2 for the writes alone). A body that is not ASCII writes more
 * bytes than it has characters: undefined then, and the call takes `encodeMixed`, which sizes each.
 */
function encodeText(tags: Uint8Array, bodies: string[]): EncodedValues | undefined {
  const n = bodies.length;
  let chars = n;
  for (let i = 0; i < n; i++) chars += bodies[i]!.length;
  // 4 bytes to spare: a body that is not ASCII then always writes more bytes than its length, even
  // when cut short by the end of the buffer (a cut leaves at most 3 bytes unwritten).
  const { buffer, offsets } = valuesBuffer(chars + 4, n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const body = bodies[i]!;
    buffer[at] = tags[i]!;
    const written = buffer.write(body, at + 1, 'utf8');
    if (written !== body.length) return undefined;
    at += 1 + written;
    offsets[i + 1] = at;
  }
  return { buffer: new Uint8Array(buffer.buffer, buffer.byteOffset, at), offsets };
}

function encodeMixed(values: [unknown, Record<string, unknown>][], tags: Uint8Array, bodies: (string | Uint8Array | undefined)[]): EncodedValues {
  const n = values.length;
  const ends = new Uint32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const body = bodies[i];
    total += 1 + (body === undefined ? 8 : typeof body === 'string' ? Buffer.byteLength(body) : body.length);
    ends[i + 1] = total;
  }
  const { buffer, offsets } = valuesBuffer(total, n);
  offsets.set(ends);
  for (let i = 0; i < n; i++) {
    const at = offsets[i]!;
    const body = bodies[i];
    buffer[at] = tags[i]!;
    if (typeof body === 'string') buffer.write(body, at + 1, 'utf8');
    else if (body !== undefined) buffer.set(body, at + 1);
    else buffer.writeDoubleLE(values[i]![0] as number, at + 1);
  }
  return { buffer: new Uint8Array(buffer.buffer, buffer.byteOffset, total), offsets };
}

function decodeAt(buf: Buffer, start: number, end: number): [unknown, Record<string, unknown>] {
  switch (buf[start]) {
    case TAG_STRING:
      return [buf.toString('utf8', start + 1, end), {}];
    case TAG_NUMBER:
      return [buf.readDoubleLE(start + 1), {}];
    case TAG_JSON:
      return [JSON.parse(buf.toString('utf8', start + 1, end)), {}];
    case TAG_JSON_PAIR:
      return JSON.parse(buf.toString('utf8', start + 1, end)) as [unknown, Record<string, unknown>];
    case TAG_BYTES:
      // A copy: a view would keep the whole batch buffer alive as long as the message's data.
      return [new Uint8Array(buf.subarray(start + 1, end)), {}];
    case TAG_BUFFER:
      return [Buffer.from(buf.subarray(start + 1, end)), {}];
    case TAG_BYTES_META:
    case TAG_BUFFER_META: {
      const at = start + 5 + buf.readUInt32LE(start + 1);
      const metadata = JSON.parse(buf.toString('utf8', start + 5, at)) as Record<string, unknown>;
      const bytes = buf.subarray(at, end);
      return [buf[start] === TAG_BYTES_META ? new Uint8Array(bytes) : Buffer.from(bytes), metadata];
    }
    default:
      return deserialize(buf.subarray(start + 1, end)) as [unknown, Record<string, unknown>];
  }
}

/** Decodes value `start..end` of an encoded buffer: what reading a processed message's `data` costs. */
export function decodeValue(buffer: Uint8Array, start: number, end: number): [unknown, Record<string, unknown>] {
  return decodeAt(Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength), start, end);
}

/** Decodes every value of an encoded buffer: a run of two or more JSON values as one array. */
export function decodeValues(encoded: EncodedValues): [unknown, Record<string, unknown>][] {
  const { offsets } = encoded;
  const buf = Buffer.from(encoded.buffer.buffer, encoded.buffer.byteOffset, encoded.buffer.byteLength);
  const n = offsets.length - 1;
  const out: [unknown, Record<string, unknown>][] = new Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j < n && buf[offsets[j]!] === TAG_JSON) j++;
    if (j - i >= 2) {
      // `,{…},{…}` from value i to j - 1: its first comma becomes the array's bracket.
      const list = JSON.parse(`[${buf.toString('utf8', offsets[i]! + 1, offsets[j]!)}]`) as unknown[];
      for (let k = i; k < j; k++) out[k] = [list[k - i], {}];
      i = j;
    } else {
      out[i] = decodeAt(buf, offsets[i]!, offsets[i + 1]!);
      i++;
    }
  }
  return out;
}

/**
 * Copies each batch's slices into its own region of one new buffer: what the main thread does
 * to form the batches it sends a batch worker in one call. The batches are views of one
 * ArrayBuffer, so the call moves one buffer, not one per batch (a transfer costs more than the
 * copy of a small batch). Consecutive slices of one source buffer (a batch key's messages of
 * one call) are copied as one run. Not zero-filled: every byte is written.
 */
export function concatBatches(batches: Slice[][]): EncodedValues[] {
  let grand = 0;
  for (const slices of batches) for (const s of slices) grand += s.end - s.start;
  const whole = Buffer.allocUnsafeSlow(grand);
  const out: EncodedValues[] = new Array(batches.length);
  let base = 0;
  for (let b = 0; b < batches.length; b++) {
    const slices = batches[b]!;
    const n = slices.length;
    const offsets = new Uint32Array(n + 1);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const s = slices[i]!;
      total += s.end - s.start;
      offsets[i + 1] = total;
    }
    const buffer = new Uint8Array(whole.buffer, whole.byteOffset + base, total);
    let i = 0;
    while (i < n) {
      const first = slices[i]!;
      let end = first.end;
      let j = i + 1;
      while (j < n && slices[j]!.buffer === first.buffer && slices[j]!.start === end) end = slices[j++]!.end;
      buffer.set(first.buffer.subarray(first.start, end), offsets[i]!);
      i = j;
    }
    out[b] = { buffer, offsets };
    base += total;
  }
  return out;
}
