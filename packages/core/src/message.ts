import { ThroughwayError, isMessage, type Acknowledger, type AcknowledgerRef, type BatchMode, type MessageStatus, type ThroughwayMessage } from '@throughway/workers';
import { OK, describeValue, type ProcessedValue } from '@throughway/workers/internal';
import type { PayloadRef } from './runtime/runtime.js';

/** Set once a message has been acked (immediately or finally): it is never acked twice. */
export const ACKED: unique symbol = Symbol('throughway.acked');

export type MainMessage = ThroughwayMessage & { acknowledger: AcknowledgerRef; [ACKED]: boolean };

export interface CreateMessageOptions {
  acknowledger: { module: Acknowledger; ref: unknown; data?: unknown };
  metadata?: Record<string, unknown>;
}

function checkAcknowledger(value: unknown, where: string): AcknowledgerRef {
  const a = value as AcknowledgerRef | undefined;
  if (a === null || typeof a !== 'object' || a.module === null || typeof a.module !== 'object' || typeof a.module.ack !== 'function') {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_MESSAGE', `Expected \`${where}\` to be { module: { ack(ref, successful, failed) }, ref, data? }, got ${describeValue(value)}`);
  }
  return a;
}

/**
 * The metadata of every message created without any: one frozen empty object, not a new `{}` per
 * message. A pipeline holds thousands of messages in flight on the main thread, long enough for
 * each to outlive a young-generation collection, and every object a message holds is copied at
 * each one: sharing this one cut the main thread's scavenge time by half or more in the README
 * pattern (see the commit). Handlers never see it (each gets a metadata object of its own);
 * a producer that wants metadata passes it to `createMessage`.
 */
const NO_METADATA: Record<string, unknown> = Object.freeze({});

/**
 * Builds a message for a producer to emit. The payload is opaque to the pipeline: hand over the
 * string or bytes the source delivered and let the handler decode it, in parallel.
 *
 * Without `options.metadata` the message's `metadata` is a shared, frozen empty object: set
 * metadata here, or give the message a new object (`m.metadata = { ... }`), never add to it.
 *
 * @example
 * createMessage(row.payload, { acknowledger: { module: queueAcker, ref: 'orders', data: { id: row.id } } })
 */
export function createMessage<D>(data: D, options: CreateMessageOptions): ThroughwayMessage<D> {
  const acknowledger = checkAcknowledger(options?.acknowledger, 'acknowledger');
  return {
    data,
    metadata: options.metadata ?? NO_METADATA,
    acknowledger: { module: acknowledger.module, ref: acknowledger.ref, data: acknowledger.data },
    batcher: 'default',
    batchKey: 'default',
    batchMode: 'bulk',
    status: OK,
    [ACKED]: false,
  } as MainMessage as ThroughwayMessage<D>;
}

/** A producer's event or a pushed message, checked once as it enters the pipeline. */
export function admitMessage(value: unknown): MainMessage {
  if (!isMessage(value)) {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_MESSAGE', `Expected a message built with createMessage, got ${describeValue(value)}`);
  }
  const m = value as MainMessage;
  if (m[ACKED] === undefined) {
    checkAcknowledger(m.acknowledger, 'message.acknowledger');
    m[ACKED] = false;
  }
  return m;
}

/** True unless the message's acknowledger declared `idsOnly`: then it never reads `data`. */
export function wantsData(m: MainMessage): boolean {
  return m.acknowledger.module.idsOnly !== true;
}

/**
 * A message as its last stage left it, with that stage's data and metadata decoded on first
 * read: an acknowledger that never looks at `data` never pays for decoding it. `data` and
 * `metadata` are getters of the class, not own properties: own accessors (a literal's, or
 * `Object.defineProperty`'s) cost V8 a slow object per message, measured at a third of the
 * throughput. `JSON.stringify` and `toJSON` include them; a spread copy `{ ...m }` does not.
 */
class ProcessedMessage {
  #ref: PayloadRef;
  #value: ProcessedValue | undefined;
  acknowledger: AcknowledgerRef;
  batcher: string;
  batchKey: unknown;
  batchMode: BatchMode;
  status: MessageStatus;
  [ACKED]: boolean;

  constructor(m: MainMessage, ref: PayloadRef) {
    this.#ref = ref;
    this.acknowledger = m.acknowledger;
    this.batcher = m.batcher;
    this.batchKey = m.batchKey;
    this.batchMode = m.batchMode;
    this.status = m.status;
    this[ACKED] = m[ACKED];
  }

  get data(): unknown {
    return (this.#value ??= this.#ref.read())[0];
  }

  set data(data: unknown) {
    (this.#value ??= this.#ref.read())[0] = data;
  }

  get metadata(): Record<string, unknown> {
    return (this.#value ??= this.#ref.read())[1];
  }

  set metadata(metadata: Record<string, unknown>) {
    (this.#value ??= this.#ref.read())[1] = metadata;
  }

  toJSON(): Record<string, unknown> {
    const { acknowledger, batcher, batchKey, batchMode, status } = this;
    return { data: this.data, metadata: this.metadata, acknowledger, batcher, batchKey, batchMode, status };
  }
}

/** The processed form of a message: see `ProcessedMessage`. */
export function processedMessage(m: MainMessage, ref: PayloadRef): MainMessage {
  return new ProcessedMessage(m, ref) as MainMessage;
}
