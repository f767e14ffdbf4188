import type { Acknowledger, ThroughwayMessage } from '@throughway/workers';
import { invalidOption, onlyKeys, plainObject } from '@throughway/workers/internal';
import type { ChannelLedger } from './ledger.js';
import { checkOnFailure, type OnFailure } from './options.js';

/** A message's ack data: its delivery tag on its channel, and what a failure does. */
export interface RabbitmqAckData {
  deliveryTag: number;
  redelivered: boolean;
  /** Set by `Message.configureAck(m, { onFailure })`; otherwise the producer's `onFailure`. */
  onFailure?: OnFailure;
}

/**
 * Whether a failed message goes back to the queue. `requeue_once` requeues a first delivery only.
 *
 * @example
 * requeues('requeue_once', false) // true: first delivery, back to the queue
 * requeues('requeue_once', true)  // false: rejected (dead-lettered if the queue has a DLX)
 */
export function requeues(onFailure: OnFailure, redelivered: boolean): boolean {
  return onFailure === 'requeue' || (onFailure === 'requeue_once' && !redelivered);
}

/**
 * The acknowledger of RabbitMQ messages. Its ref is the ledger of the channel a message came
 * from, which also holds the producer's default `onFailure`.
 *
 * @example
 * // in a handler: this message goes back to the queue once, whatever the producer's default
 * return Message.failed(Message.configureAck(message, { onFailure: 'requeue_once' }), 'upstream timeout')
 */
export const rabbitmqAcknowledger: Acknowledger = Object.freeze({
  // Reads only each message's ack data (its delivery tag): no processed data comes back.
  idsOnly: true,
  ack(ref: unknown, successful: ThroughwayMessage[], failed: ThroughwayMessage[]): void {
    const ledger = ref as ChannelLedger;
    for (let i = 0; i < successful.length; i++) ledger.succeeded((successful[i]!.acknowledger!.data as RabbitmqAckData).deliveryTag);
    for (let i = 0; i < failed.length; i++) {
      const data = failed[i]!.acknowledger!.data as RabbitmqAckData;
      ledger.reject(data.deliveryTag, requeues(data.onFailure ?? ledger.onFailure, data.redelivered));
    }
    ledger.flush();
  },

  configure(_ref: unknown, data: unknown, options: unknown): RabbitmqAckData {
    const o = plainObject('configureAck', options);
    onlyKeys('configureAck', o, ['onSuccess', 'onFailure']);
    if (o.onSuccess !== undefined && o.onSuccess !== 'ack') invalidOption('configureAck.onSuccess', "'ack'", o.onSuccess);
    const next = { ...(data as RabbitmqAckData) };
    if (o.onFailure !== undefined) next.onFailure = checkOnFailure('configureAck.onFailure', o.onFailure);
    return next;
  },
});
