export { rabbitmqQueue, RabbitmqProducer, type RabbitmqQueueSource } from './producer.js';
export { rabbitmqAcknowledger, requeues, type RabbitmqAckData } from './acknowledger.js';
export { derivePrefetch, FALLBACK_PREFETCH, type RabbitmqQueueOptions, type OnFailure, type BackoffOptions, type Binding, type DeclareOptions } from './options.js';
export { METADATA_KEYS, type MetadataKey } from './metadata.js';
export { Backoff } from './backoff.js';
export { rabbitmqChannels } from './telemetry.js';
export type { RabbitmqStats } from './ledger.js';
