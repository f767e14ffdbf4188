import { ThroughwayError, isMessage, type Acknowledger, type AcknowledgerRef, type ThroughwayMessage } from '@throughway/workers';
import { OK, describeValue } from '@throughway/workers/internal';

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
 * Builds a message for a producer to emit. The payload is opaque to the pipeline: hand over the
 * string or bytes the source delivered and let the handler decode it, in parallel.
 *
 * @example
 * createMessage(row.payload, { acknowledger: { module: queueAcker, ref: 'orders', data: { id: row.id } } })
 */
export function createMessage<D>(data: D, options: CreateMessageOptions): ThroughwayMessage<D> {
  const acknowledger = checkAcknowledger(options?.acknowledger, 'acknowledger');
  return {
    data,
    metadata: options.metadata ?? {},
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
