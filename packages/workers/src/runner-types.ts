import type { BatchInfo } from './batch-info.js';
import type { AckOp, BatchMode, MessageStatus } from './message.js';

/** Message fields that differ from the defaults, sent only for the messages that have them. */
export interface MessageInit {
  metadata?: Record<string, unknown>;
  batcher?: string;
  batchKey?: unknown;
  batchMode?: BatchMode;
}

/**
 * Metadata of a call whose messages all carry the same keys with primitive values, sent as
 * columns: arrays of primitives cross threads several times cheaper than one object each.
 */
export interface MetadataColumns {
  keys: string[];
  columns: unknown[][];
}

/** One processor call: at most `maxDemand - minDemand` messages, one `prepareMessages`. */
export interface CallInput {
  datas: unknown[];
  /** Sparse: `inits[i]` only where message i is not all defaults. */
  inits?: (MessageInit | undefined)[];
  /** When set, the metadata of every message (and `inits` carries none). */
  metadataColumns?: MetadataColumns;
  /**
   * Messages whose acknowledger reads processed data (it did not declare `idsOnly`): `true` for
   * all of them, or their indices. Absent: none, and no data comes back for the acks.
   */
  want?: Wanted;
}

/** Which messages' processed data goes back to the main thread: all of them, or these indices. */
export type Wanted = true | number[];

/** A processed message's `[data, metadata]`, as the last callback left them. */
export type ProcessedValue = [unknown, Record<string, unknown>];

/** A warning raised in a thread, logged by the coordinator's logger. */
export interface RunnerLog {
  msg: string;
  [key: string]: unknown;
}

export interface HandleFailedReport {
  size: number;
  threw: boolean;
}

/**
 * A per-message column that crosses threads as one value when every message has the same
 * (the common case: one batcher, one key, one mode), instead of one clone per message; a column of
 * a few strings that repeat (say five event types as batch keys) as each string once and a code
 * per message: the clone copies a string per message (and the main thread gets a new string each
 * time), where a code is a small integer.
 */
export type Column<T> = { all: T } | { each: T[] } | { keys: T[]; at: number[] };

/** Columns shorter than this go as they are: a dictionary would save little. */
const DICTIONARY_FROM = 8;

/** The column of `values`: one value, a dictionary (only if `dictionary`), or each value. */
export function columnOf<T>(values: T[], dictionary = false): Column<T> {
  const first = values[0]!;
  let i = 1;
  while (i < values.length && values[i] === first) i++;
  if (i === values.length) return { all: first };
  return (dictionary ? dictionaryOf(values) : undefined) ?? { each: values };
}

/** The column as a dictionary, when it holds only strings and at most half of them distinct. */
function dictionaryOf<T>(values: T[]): Column<T> | undefined {
  const n = values.length;
  if (n < DICTIONARY_FROM) return undefined;
  const codes = new Map<T, number>();
  const keys: T[] = [];
  // Built by push, so that it stays a packed array of small integers (the clone writes a holey
  // array element by element, with its index).
  const at: number[] = [];
  for (let i = 0; i < n; i++) {
    const value = values[i]!;
    if (typeof value !== 'string') return undefined;
    let code = codes.get(value);
    if (code === undefined) {
      if (keys.length * 2 >= n) return undefined;
      code = keys.length;
      codes.set(value, code);
      keys.push(value);
    }
    at.push(code);
  }
  return { keys, at };
}

export function cell<T>(column: Column<T>, i: number): T {
  if ('all' in column) return column.all;
  if ('each' in column) return column.each[i]!;
  return column.keys[column.at[i]!]!;
}

export interface CallOutput {
  size: number;
  /** Final status per message; absent when every message is ok. */
  statuses?: MessageStatus[];
  /** Routing per message; present only when the pipeline has batchers. */
  batchers?: Column<string>;
  batchKeys?: Column<unknown>;
  batchModes?: Column<BatchMode>;
  /**
   * `[data, metadata]` of the messages that go on to a batcher (ok, with batchers) or whose
   * acknowledger wants processed data (`CallInput.want`); the threads runtime encodes them.
   */
  values?: ProcessedValue[];
  /** Index of the message of each value, in order; absent when values cover every message. */
  sent?: number[];
  /** Sparse ack requests by message index. */
  ackOps?: [number, AckOp[]][];
  handleFailed?: HandleFailedReport;
  logs?: RunnerLog[];
  failures?: FailureReport[];
  /** Time spent in the callbacks, for adaptive chunk sizing and load figures. */
  busyMs: number;
}

export interface BatchItem {
  data: unknown;
  metadata: Record<string, unknown>;
  batchMode: BatchMode;
}

export interface BatchInput {
  batcher: string;
  info: BatchInfo;
  items: BatchItem[];
  /** Some message of the batch has an acknowledger that reads processed data. */
  want?: boolean;
}

export interface BatchOutput {
  /**
   * Per message; `undefined` where `handleBatch` did not return the message: it is never
   * acked. Absent when every message came back ok.
   */
  statuses?: (MessageStatus | undefined)[];
  ackOps?: [number, AckOp[]][];
  handleFailed?: HandleFailedReport;
  logs?: RunnerLog[];
  failures?: FailureReport[];
  /** With `BatchInput.want`: `[data, metadata]` of each returned message, as in `CallOutput`. */
  values?: ProcessedValue[];
  sent?: number[];
  busyMs: number;
}

/**
 * Messages a callback failed without the user asking for it (a throw, a value that is not a
 * message, junk from handleBatch): logged at error by the coordinator, once per distinct error.
 */
export interface FailureReport {
  /** `dispatch`: the message never reached a callback (its data could not be copied into a thread). */
  stage: 'prepareMessages' | 'handleMessage' | 'handleBatch' | 'dispatch';
  error: import('./errors.js').SerializedError;
  /** Messages it failed. */
  count: number;
  batcher?: string;
  batchKey?: unknown;
}
