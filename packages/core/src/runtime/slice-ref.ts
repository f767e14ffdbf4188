import { decodeValue, type ProcessedValue, type Slice } from '@throughway/workers/internal';
import type { PayloadRef } from './runtime.js';

/** A processed value as bytes of a buffer moved from a thread; decoded only when read. */
export class SliceRef implements PayloadRef, Slice {
  constructor(
    readonly buffer: Uint8Array,
    readonly start: number,
    readonly end: number,
  ) {}

  read(): ProcessedValue {
    return decodeValue(this.buffer, this.start, this.end);
  }
}

/** The values of an encoded buffer (`offsets[k]..offsets[k + 1]`), one ref each. */
export function slicesOf(buffer: Uint8Array, offsets: Uint32Array): SliceRef[] {
  const list: SliceRef[] = new Array(offsets.length - 1);
  for (let k = 0; k < list.length; k++) list[k] = new SliceRef(buffer, offsets[k]!, offsets[k + 1]!);
  return list;
}
