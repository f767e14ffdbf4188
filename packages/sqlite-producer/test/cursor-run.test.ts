// A cursor with `untilEnd` is a finite source: it reports exhaustion at the end of the table, so
// Pipeline.run finishes once every row is acked and the checkpoint is written. Both runtimes.
import { describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { cursorFailures, readCheckpoint, sqliteCursor } from '@throughway/sqlite-producer';
import { open, tmpDb } from './helpers.js';

const handlers = new URL('./fixtures/outcome-handlers.mjs', import.meta.url);

describe.each(['inline', 'threads'] as const)('sqliteCursor untilEnd [%s]', (runtime) => {
  test('Pipeline.run reads the whole table once and resolves; the checkpoint is at the last key', async () => {
    const file = tmpDb('users');
    const db = open(file);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO users (id, payload) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= 1200; i++) insert.run(i, i % 400 === 0 ? `fail:${i}` : `ok:${i}`);
    })();
    db.close();
    const source = sqliteCursor({ database: file, table: 'users', checkpointName: `run-${runtime}`, untilEnd: true });
    const result = await Pipeline.run({ name: `cursor-run-${runtime}`, handlers, producer: { module: source }, processors: { default: { runtime, concurrency: 2 } } });
    expect(result.totals).toEqual({ messages: 1200, successful: 1197, failed: 3 });
    expect(result.failures).toEqual({ 'refused fail:400': 1, 'refused fail:800': 1, 'refused fail:1200': 1 });
    expect(result.unacked).toBe(0);
    expect(readCheckpoint(file, `run-${runtime}`)).toBe(1200);
    expect(cursorFailures(file, `run-${runtime}`).map((f) => f.key)).toEqual([400, 800, 1200]);
  });

  test('untilEnd must be a boolean', () => {
    expect(() => sqliteCursor({ database: tmpDb(), table: 'users', untilEnd: 'yes' } as never)).toThrow(/`sqliteCursor.untilEnd`/);
  });
});
