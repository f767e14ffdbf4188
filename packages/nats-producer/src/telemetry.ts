import diagnostics from 'node:diagnostics_channel';

/**
 * `throughway:nats` on `node:diagnostics_channel`: one event per connection change and per ack
 * call, built only when someone listens.
 *
 * - `{ type: 'connect' | 'disconnect' | 'reconnect', stream, consumer, server? }`
 * - `{ type: 'ack', stream, consumer, acked, naked, terminated, deadLettered }`
 */
export const natsChannel = diagnostics.channel('throughway:nats');
