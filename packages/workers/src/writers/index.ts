/**
 * Bulk writers for `handleBatch`: Ecto-style `insertAll` for SQLite (better-sqlite3) and Postgres (pg).
 */
export { sqliteRepo, postgresRepo } from './repos.js';
export { timestamps, expectCount, type Timestamps } from './helpers.js';
export type { SqliteConnection, PostgresConnection } from './connections.js';
export type { Entry, EntryOf, InsertAllOptions, InsertAllResult, OnConflict, Repo, WritableValue } from './types.js';
