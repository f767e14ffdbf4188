import { ThroughwayError, describeValue, toReason, type SerializedError } from './errors.js';

export type BatchMode = 'bulk' | 'flush';

export type MessageStatus =
  | { kind: 'ok' }
  | { kind: 'failed'; reason: unknown }
  | { kind: 'error'; error: SerializedError };

/**
 * Where a message is acknowledged. Lives on the main thread only: the module may hold a
 * database connection or a channel, which never crosses into a worker thread.
 *
 * `ack` gets the messages as the last stage left them: the data and metadata `handleMessage`
 * produced (no batchers) or `handleBatch` returned (with batchers), and their final status. An
 * acknowledger that reads only its own ack data (`acknowledger.data`, say a row id) declares
 * `idsOnly: true`: then no processed data comes back from the threads for its messages, and
 * their `data`/`metadata` stay what the source emitted.
 *
 * @example
 * const queueAcker: Acknowledger = {
 *   idsOnly: true,
 *   ack(ref, successful, failed) {
 *     deleteRows(successful.map((m) => m.acknowledger!.data))
 *     retryLater(failed.map((m) => m.acknowledger!.data))
 *   },
 * }
 */
export interface Acknowledger {
  ack(ref: unknown, successful: ThroughwayMessage[], failed: ThroughwayMessage[]): void | Promise<void>;
  /** Returns the message's new ack data; a throw fails the message. */
  configure?(ref: unknown, data: unknown, options: unknown): unknown;
  /**
   * `true`: `ack` reads only the messages' ack data and status, never `data` or `metadata`, so
   * the processed data need not travel back from the threads. Every built-in source declares it.
   * @default false
   */
  readonly idsOnly?: boolean;
}

export interface AcknowledgerRef {
  module: Acknowledger;
  ref: unknown;
  data?: unknown;
}

/**
 * A message as handlers and acknowledgers see it. `D` types `data` where you know it: in a
 * handler module, `definePipeline<Context, Data>` types the messages `handleMessage` gets.
 */
export interface ThroughwayMessage<D = unknown> {
  data: D;
  metadata: Record<string, unknown>;
  /** The source's acknowledger; `null` inside handlers, which never see it. */
  acknowledger: AcknowledgerRef | null;
  batcher: string;
  batchKey: unknown;
  batchMode: BatchMode;
  status: MessageStatus;
}

/** An acknowledgement request a handler made; applied on the main thread after the callback. */
export type AckOp = { op: 'configure'; options: unknown } | { op: 'ack' };

/** Symbol-keyed and enumerable, so it survives `{ ...message }` in a handler. */
export const ACK_OPS: unique symbol = Symbol.for('throughway.ackOps');
/** Position of a handler-side message in its call or batch, kept across `{ ...message }`. */
export const INDEX: unique symbol = Symbol.for('throughway.index');

export const OK: MessageStatus = Object.freeze({ kind: 'ok' }) as MessageStatus;

type Internal = ThroughwayMessage & { [ACK_OPS]?: AckOp[]; [INDEX]?: number };

export function isMessage(value: unknown): value is ThroughwayMessage {
  if (value === null || typeof value !== 'object') return false;
  const m = value as Partial<ThroughwayMessage>;
  return (
    'data' in m &&
    typeof m.batcher === 'string' &&
    (m.batchMode === 'bulk' || m.batchMode === 'flush') &&
    m.status !== null &&
    typeof m.status === 'object' &&
    typeof (m.status as { kind?: unknown }).kind === 'string'
  );
}

function assertMessage(m: unknown, helper: string): asserts m is Internal {
  if (!isMessage(m)) {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `Message.${helper} expected a message, got ${describeValue(m)}`);
  }
}

function addOp(m: Internal, op: AckOp): void {
  // Copy-on-write: a spread copy of the message shares the array with its original.
  m[ACK_OPS] = m[ACK_OPS] ? [...m[ACK_OPS], op] : [op];
}

/**
 * The message helpers. Each changes the message it is given and returns it, so calls chain
 * inside `handleMessage`.
 *
 * @example
 * handleMessage(_processor, message) {
 *   const event = JSON.parse(message.data as string)
 *   if (!event.id) return Message.failed(message, 'missing id')
 *   return Message.putBatchKey(Message.putData(message, event), event.type)
 * }
 */
export const Message = Object.freeze({
  /** Replaces `data` with `fn(data)`; the message's type follows the new data. */
  updateData<D, R>(m: ThroughwayMessage<D>, fn: (data: D) => R): ThroughwayMessage<R> {
    assertMessage(m, 'updateData');
    (m as ThroughwayMessage).data = fn(m.data);
    return m as unknown as ThroughwayMessage<R>;
  },
  /** Replaces `data`; the message's type follows the new data. */
  putData<D>(m: ThroughwayMessage<any>, data: D): ThroughwayMessage<D> {
    assertMessage(m, 'putData');
    m.data = data;
    return m as ThroughwayMessage<D>;
  },
  /** Routes the message to the batcher with this name (ignored when the pipeline has no batchers). */
  putBatcher<M extends ThroughwayMessage>(m: M, batcher: string): M {
    assertMessage(m, 'putBatcher');
    if (typeof batcher !== 'string' || batcher === '') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `Expected \`batcher\` to be a non-empty string, got ${describeValue(batcher)}`);
    }
    m.batcher = batcher;
    return m;
  },
  /** Groups the message with others of the same key inside its batcher. */
  putBatchKey<M extends ThroughwayMessage>(m: M, batchKey: unknown): M {
    assertMessage(m, 'putBatchKey');
    m.batchKey = batchKey;
    return m;
  },
  /** 'flush' emits the message's batch at the end of the processor call that produced it. */
  putBatchMode<M extends ThroughwayMessage>(m: M, mode: BatchMode): M {
    assertMessage(m, 'putBatchMode');
    if (mode !== 'bulk' && mode !== 'flush') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `Expected \`batchMode\` to be 'bulk' or 'flush', got ${describeValue(mode)}`);
    }
    m.batchMode = mode;
    return m;
  },
  /** Marks the message failed with a reason; it goes to `handleFailed` and is acked as failed. */
  failed<M extends ThroughwayMessage>(m: M, reason: unknown): M {
    assertMessage(m, 'failed');
    m.status = { kind: 'failed', reason: toReason(reason) };
    return m;
  },
  /** Asks the source's acknowledger to change how this message will be acked (`configure`). */
  configureAck<M extends ThroughwayMessage>(m: M, options: unknown): M {
    assertMessage(m, 'configureAck');
    addOp(m, { op: 'configure', options });
    return m;
  },
  /** Acks the message as soon as the current callback returns; its final ack then does nothing. */
  ackImmediately<M extends ThroughwayMessage>(m: M): M {
    assertMessage(m, 'ackImmediately');
    addOp(m, { op: 'ack' });
    return m;
  },
});

/** A handler-side message: no acknowledger, tagged with its position. */
export function handlerMessage(
  index: number,
  data: unknown,
  metadata: Record<string, unknown> | undefined,
  batcher: string,
  batchKey: unknown,
  batchMode: BatchMode,
): ThroughwayMessage {
  return {
    data,
    metadata: metadata ?? {},
    acknowledger: null,
    batcher,
    batchKey,
    batchMode,
    status: OK,
    [INDEX]: index,
  } as ThroughwayMessage;
}
