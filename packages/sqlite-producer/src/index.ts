export { sqliteQueue, SqliteQueueProducer, type SqliteQueueSource } from './producer.js';
export { queueAcknowledger, type QueueStats, type QueueAckData } from './acknowledger.js';
/** The text a failed row's `last_error` holds (shared by the queue sources). */
export { errorText } from '@throughway/workers/internal';
export { migrate, CHECKPOINT_TABLE, CURSOR_FAILURES_TABLE, type MigrateOptions } from './migrate.js';
export { enqueue, type EnqueueItem, type EnqueueOptions, type EnqueueResult } from './enqueue.js';
export { openDatabase, type SqliteDatabase } from './connection.js';
export { exponentialBackoff, quoteIdentifier, type SqliteQueueOptions, type SqliteCursorOptions, type BackoffOptions, type BackoffFunction } from './options.js';
export { sqliteCursor, SqliteCursorProducer, type SqliteCursorSource } from './cursor.js';
export { cursorAcknowledger, type CursorStats, type CursorAckData } from './cursor-acknowledger.js';
export { AckTracker, type CursorKey } from './ack-tracker.js';
export { countPending, queueDrained, queueCounts, leasedRows, releaseLeases, deadLetters, readCheckpoint, cursorFailures, type DeadLetter, type QueueCounts, type LeasedRow, type CursorFailure } from './inspect.js';
