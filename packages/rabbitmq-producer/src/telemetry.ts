import { channel } from 'node:diagnostics_channel';

/**
 * Telemetry of the RabbitMQ producer on `node:diagnostics_channel`, on the main thread:
 * - `connect`: `{ queue, connectionName, url, prefetch, attempt }` after a connection is set up and consuming;
 * - `disconnect`: `{ queue, connectionName, reason, dropped }` when a connection or channel is lost
 *   (`dropped`: messages delivered on it and not acked, which the broker redelivers);
 * - `ack`: `{ queue, deliveryTag, multiple, count }` for each basic.ack sent;
 * - `reject`: `{ queue, deliveryTag, requeue }` for each basic.reject sent.
 * Payloads are built only when a channel has subscribers.
 *
 * @example
 * import { subscribe } from 'node:diagnostics_channel'
 * subscribe('throughway:rabbitmq:disconnect', (event) => console.warn('lost RabbitMQ', event))
 */
export const rabbitmqChannels = Object.freeze({
  connect: channel('throughway:rabbitmq:connect'),
  disconnect: channel('throughway:rabbitmq:disconnect'),
  ack: channel('throughway:rabbitmq:ack'),
  reject: channel('throughway:rabbitmq:reject'),
});
