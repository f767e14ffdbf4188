import { deserialize, serialize } from 'node:v8';

/**
 * Processed messages travel from a processor thread to a batch worker through the main thread,
 * which must not parse them. Each message becomes a byte slice of one buffer per task; the main
 * thread only copies slices into a batch buffer. Strings with no metadata, the common case of
 * a JSON payload, skip the v8 serializer.
 */
const TAG_STRING = 1;
const TAG_V8 = 2;

export interface EncodedValues {
  buffer: Uint8Array;
  /** `offsets[i]..offsets[i + 1]` is value i. */
  offsets: Uint32Array;
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

export function encodeValues(values: [unknown, Record<string, unknown>][]): EncodedValues {
  const n = values.length;
  const offsets = new Uint32Array(n + 1);
  // First pass sizes everything, so the bytes are written once, straight into one buffer.
  const serialized: (Buffer | undefined)[] = new Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const [data, metadata] = values[i]!;
    if (typeof data === 'string' && isEmpty(metadata)) total += 1 + Buffer.byteLength(data);
    else total += 1 + (serialized[i] = serialize([data, metadata])).length;
    offsets[i + 1] = total;
  }
  const buffer = Buffer.allocUnsafeSlow(total);
  for (let i = 0; i < n; i++) {
    const at = offsets[i]!;
    const body = serialized[i];
    if (body === undefined) {
      buffer[at] = TAG_STRING;
      buffer.write(values[i]![0] as string, at + 1, 'utf8');
    } else {
      buffer[at] = TAG_V8;
      buffer.set(body, at + 1);
    }
  }
  return { buffer: new Uint8Array(buffer.buffer, buffer.byteOffset, total), offsets };
}

/** Decodes value `start..end` of an encoded buffer: what reading a processed message's `data` costs. */
export function decodeValue(buffer: Uint8Array, start: number, end: number): [unknown, Record<string, unknown>] {
  const buf = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return buf[start] === TAG_STRING ? [buf.toString('utf8', start + 1, end), {}] : (deserialize(buf.subarray(start + 1, end)) as [unknown, Record<string, unknown>]);
}

/** Decodes every value of an encoded buffer. */
export function decodeValues(encoded: EncodedValues): [unknown, Record<string, unknown>][] {
  const { offsets } = encoded;
  const buf = Buffer.from(encoded.buffer.buffer, encoded.buffer.byteOffset, encoded.buffer.byteLength);
  const n = offsets.length - 1;
  const out: [unknown, Record<string, unknown>][] = new Array(n);
  for (let i = 0; i < n; i++) {
    const start = offsets[i]!;
    const end = offsets[i + 1]!;
    out[i] = buf[start] === TAG_STRING ? [buf.toString('utf8', start + 1, end), {}] : (deserialize(buf.subarray(start + 1, end)) as [unknown, Record<string, unknown>]);
  }
  return out;
}

/**
 * Copies the given slices into one buffer: what the main thread does to form a batch.
 * Consecutive slices of one source buffer (a batch key's messages of one call) are copied as
 * one run.
 */
export function concatSlices(slices: Slice[]): EncodedValues {
  const n = slices.length;
  const offsets = new Uint32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const s = slices[i]!;
    total += s.end - s.start;
    offsets[i + 1] = total;
  }
  const buffer = new Uint8Array(total);
  let i = 0;
  while (i < n) {
    const first = slices[i]!;
    let end = first.end;
    let j = i + 1;
    while (j < n && slices[j]!.buffer === first.buffer && slices[j]!.start === end) end = slices[j++]!.end;
    buffer.set(first.buffer.subarray(first.start, end), offsets[i]!);
    i = j;
  }
  return { buffer, offsets };
}
