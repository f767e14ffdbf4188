export { postgresQueue, PostgresQueueProducer, type PostgresQueueSource } from './producer.js';
export { queueAcknowledger, errorText, type QueueStats, type QueueAckData } from './acknowledger.js';
export { migrate, CHECKPOINT_TABLE, QUEUE_STORAGE, type MigrateOptions } from './migrate.js';
export { enqueue, type EnqueueItem, type EnqueueOptions } from './enqueue.js';
export { exponentialBackoff, quoteIdentifier, type PostgresQueueOptions, type BackoffOptions, type BackoffFunction, type Connection } from './options.js';
export { reconnectDelay } from './connection.js';
export { queueCounts, deadLetters, type QueueCounts, type DeadLetter } from './inspect.js';
