export { natsJetStream, NatsJetStreamProducer, type NatsJetStreamSource } from './producer.js';
export { natsAcknowledger } from './acknowledger.js';
export { failureReason, type NatsStats, type NatsAckData } from './ack-ref.js';
export { parseAckSubject, type DeliveryInfo } from './delivery.js';
export { backoffFunction, METADATA_KEYS, type NatsJetStreamOptions, type BackoffOptions, type BackoffFunction, type MetadataKey } from './options.js';
export { natsChannel } from './telemetry.js';
