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
}

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
 * (the common case: one batcher, one key, one mode), instead of one clone per message.
 */
export type Column<T> = { all: T } | { each: T[] };

export function columnOf<T>(values: T[]): Column<T> {
  const first = values[0]!;
  for (let i = 1; i < values.length; i++) if (values[i] !== first) return { each: values };
  return { all: first };
}

export function cell<T>(column: Column<T>, i: number): T {
  return 'all' in column ? column.all : column.each[i]!;
}

export interface CallOutput {
  size: number;
  /** Final status per message; absent when every message is ok. */
  statuses?: MessageStatus[];
  /** Routing per message; present only when the pipeline has batchers. */
  batchers?: Column<string>;
  batchKeys?: Column<unknown>;
  batchModes?: Column<BatchMode>;
  /** Indices of the messages that go on to a batcher, in order; absent when all of them do. */
  forward?: number[];
  /** For each forwarded message, `[data, metadata]` (the threads runtime encodes these). */
  values?: [unknown, Record<string, unknown>][];
  /** Sparse ack requests by message index. */
  ackOps?: [number, AckOp[]][];
  handleFailed?: HandleFailedReport;
  logs?: RunnerLog[];
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
  busyMs: number;
}
