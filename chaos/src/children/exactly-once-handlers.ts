/**
 * Handler module of the exactly-once kill loop: each batch writes its rows into `sink` of the
 * queue's own file and acks its queue rows in the same transaction (`ackInTransaction`), on a
 * connection the batch worker opens in setup. `context` = { database }.
 */
import Database from 'better-sqlite3';
import { definePipeline, Message } from '@throughway/workers';
import { ackInTransaction } from '@throughway/sqlite-producer/handler';

interface Context {
  database: string;
  db?: Database.Database;
}

export default definePipeline<Context>({
  setup(context, info) {
    if (info.kind !== 'batcher') return context;
    const db = new Database(context.database, { timeout: 10_000 });
    db.pragma('journal_mode = WAL');
    return { ...context, db };
  },
  handleMessage: (_processor, message) => Message.putData(message, { id: Number(message.data), pid: process.pid }),
  handleBatch: (_batcher, messages, _info, context) => ackInTransaction(context.db!, messages, (repo, owned) => repo.insertAll('sink', owned.map((m) => m.data as { id: number; pid: number }))),
  teardown(context) {
    context.db?.close();
  },
});
