/**
 * Handler module of the two-process check (runs in processor threads): records each message it
 * handles (row id, process id) in a side SQLite file, taking `delayMs` per message so that a kill
 * lands mid-run. `context` = { side, delayMs }.
 */
import Database from 'better-sqlite3';
import { definePipeline } from '@throughway/workers';

interface Context {
  side: string;
  delayMs: number;
  insert?: Database.Statement;
}

export default definePipeline<Context>({
  setup(context) {
    // Opened with a busy timeout: threads of two processes switch the same new file to WAL at once.
    const db = new Database(context.side, { timeout: 10_000 });
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE IF NOT EXISTS processed (id INTEGER NOT NULL, pid INTEGER NOT NULL)');
    return { ...context, insert: db.prepare('INSERT INTO processed (id, pid) VALUES (?, ?)') };
  },
  async handleMessage(_processor, message, context) {
    if (context.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, context.delayMs));
    context.insert!.run(Number(String(message.data)), process.pid);
    return message;
  },
});
