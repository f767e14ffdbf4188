import type { Acknowledger, ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import { NatsAckRef, type NatsAckData } from './ack-ref.js';
import { describeValue } from './options.js';

const CONFIGURE_OPTIONS = ['retry', 'onFailure'];

/**
 * The acknowledger of NATS JetStream messages. `ack` sends `+ACK` for each successful message;
 * a failed one is naked with the `retryBackoff` delay while it has deliveries left, else (or
 * after `configureAck(m, { retry: false })`) published to the dead-letter subject if there is
 * one and terminated (`+TERM`), so the server never delivers it again.
 *
 * @example
 * // in a handler module
 * handleMessage(_processor, message) {
 *   if (!valid(message.data)) return Message.failed(Message.configureAck(message, { retry: false }), 'invalid payload')
 *   return message
 * }
 */
export const natsAcknowledger: Acknowledger = {
  // Reads each message's ack data, and for a dead letter the payload as the source delivered it
  // (which idsOnly keeps): no processed data need come back.
  idsOnly: true,
  ack(ref: unknown, successful: ThroughwayMessage[], failed: ThroughwayMessage[]): void | Promise<void> {
    if (!(ref instanceof NatsAckRef)) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_ARGUMENT', `natsAcknowledger.ack: expected the ref of a NATS JetStream producer, got ${describeValue(ref)}`);
    }
    return ref.add(successful, failed);
  },

  configure(_ref: unknown, data: unknown, options: unknown): NatsAckData {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `configureAck on a NATS message expects { retry?: boolean, onFailure?: 'retry' | 'term' }, got ${describeValue(options)}`, {
        details: { path: 'configureAck', received: options },
      });
    }
    const o = options as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !CONFIGURE_OPTIONS.includes(k));
    if (unknown.length > 0) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Unknown configureAck option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `\`${k}\``).join(', ')} for a NATS message; the known ones are ${CONFIGURE_OPTIONS.join(', ')}`, {
        details: { path: 'configureAck', unknown },
      });
    }
    if (o.retry !== undefined && typeof o.retry !== 'boolean') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Expected \`configureAck.retry\` to be a boolean, got ${describeValue(o.retry)}`, { details: { path: 'configureAck.retry', received: o.retry } });
    }
    if (o.onFailure !== undefined && o.onFailure !== 'retry' && o.onFailure !== 'term') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Expected \`configureAck.onFailure\` to be 'retry' or 'term', got ${describeValue(o.onFailure)}`, { details: { path: 'configureAck.onFailure', received: o.onFailure } });
    }
    const current = data as NatsAckData;
    const retry = o.onFailure !== undefined ? o.onFailure === 'retry' : (o.retry as boolean | undefined);
    return retry === undefined ? { ...current } : { ...current, retry };
  },
};
