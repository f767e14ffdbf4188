export { postgresQueue, PostgresQueueProducer, type PostgresQueueSource } from './producer.js';
export { queueAcknowledger, type QueueStats, type QueueAckData } from './acknowledger.js';
/** The text a failed row's `last_error` holds (shared by the queue sources). */
export { errorText } from '@throughway/workers/internal';
export { migrate, CHECKPOINT_TABLE, QUEUE_STORAGE, type MigrateOptions } from './migrate.js';
export { enqueue, type EnqueueItem, type EnqueueOptions } from './enqueue.js';
export { exponentialBackoff, quoteIdentifier, type PostgresQueueOptions, type BackoffOptions, type BackoffFunction, type Connection } from './options.js';
export { reconnectDelay } from './connection.js';
export { queueCounts, queueDrained, deadLetters, type QueueCounts, type DeadLetter } from './inspect.js';
export { postgresCursor, PostgresCursorProducer, type PostgresCursorSource } from './cursor.js';
export { cursorAcknowledger, CURSOR_FAILURES_TABLE, type CursorStats, type CursorAckData } from './cursor-acknowledger.js';
export { CheckpointTracker, type CursorKey } from './checkpoint.js';
export type { PostgresCursorOptions } from './cursor-options.js';
