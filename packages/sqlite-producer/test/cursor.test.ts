// Cursor mode driven by hand: reads in key order, checkpoints only over fully acked prefixes.
import { afterEach, describe, expect, test } from 'vitest';
import type { ThroughwayMessage } from '@throughway/core';
import { AckTracker, SqliteCursorProducer, cursorAcknowledger, cursorFailures, readCheckpoint, sqliteCursor } from '@throughway/sqlite-producer';
import { controller, fail, open, tmpDb, waitFor } from './helpers.js';

const started: SqliteCursorProducer[] = [];
afterEach(() => {
  for (const p of started.splice(0)) p.terminate();
});

function usersDb(count: number, keys?: (i: number) => number | string): string {
  const file = tmpDb('users');
  const db = open(file);
  db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, code TEXT UNIQUE)');
  const insert = db.prepare('INSERT INTO users (id, email, code) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= count; i++) insert.run(keys ? (keys(i) as number) : i * 10, `u${i}@example.com`, `c${String(i).padStart(4, '0')}`);
  })();
  db.close();
  return file;
}

function cursor(options: Parameters<typeof sqliteCursor>[0]) {
  const c = controller();
  const p = sqliteCursor(options)(0);
  p.init(c);
  started.push(p);
  return { p, c };
}

function ack(successful: ThroughwayMessage[], failed: ThroughwayMessage[] = []): Promise<void> {
  const ref = (successful[0] ?? failed[0])!.acknowledger!.ref;
  return cursorAcknowledger.ack(ref, successful, failed) as Promise<void>;
}

test('AckTracker commits only the acked prefix', () => {
  const t = new AckTracker();
  for (const k of [1, 2, 3, 4, 5]) t.emitted(k);
  t.acked(2);
  t.acked(3);
  expect(t.advance()).toBe(false);
  expect(t.committed).toBeUndefined();
  t.acked(1);
  expect(t.advance()).toBe(true);
  expect(t.committed).toBe(3);
  t.acked(5);
  t.advance();
  expect(t.committed).toBe(3);
  expect(t.outstanding).toBe(2);
  t.acked(4);
  t.advance();
  expect(t.committed).toBe(5);
});

describe('sqliteCursor', () => {
  test('reads rows in key order, demand at a time, as row objects, without changing the table', () => {
    const file = usersDb(5);
    const before = open(file).prepare('SELECT * FROM users ORDER BY id').all();
    const { p } = cursor({ database: file, table: 'users' });
    const first = p.handleDemand(2);
    expect(first.map((m) => m.data)).toEqual([
      { id: 10, email: 'u1@example.com', code: 'c0001' },
      { id: 20, email: 'u2@example.com', code: 'c0002' },
    ]);
    expect(first[0]!.metadata).toEqual({ key: 10 });
    expect(p.handleDemand(10).map((m) => (m.data as { id: number }).id)).toEqual([30, 40, 50]);
    expect(open(file).prepare('SELECT * FROM users ORDER BY id').all()).toEqual(before);
  });

  test('the checkpoint moves only up to the highest key below which every row was acked', async () => {
    const file = usersDb(6);
    const { p } = cursor({ database: file, table: 'users', checkpointName: 'mailer' });
    const ms = p.handleDemand(6);
    await ack([ms[1]!, ms[2]!]);
    expect(readCheckpoint(file, 'mailer')).toBeUndefined();
    await ack([ms[0]!]);
    expect(readCheckpoint(file, 'mailer')).toBe(30);
    await ack([ms[4]!, ms[5]!]);
    expect(readCheckpoint(file, 'mailer')).toBe(30);
    await ack([ms[3]!]);
    expect(readCheckpoint(file, 'mailer')).toBe(60);
    expect(p.stats()).toMatchObject({ read: 6, acked: 6, failed: 0, checkpoint: 60 });
  });

  test('a failed row is recorded in throughway_cursor_failures and counts as done', async () => {
    const file = usersDb(3);
    const { p } = cursor({ database: file, table: 'users' });
    const ms = p.handleDemand(3);
    await ack([ms[0]!, ms[2]!], [fail(ms[1]!, 'smtp refused')]);
    expect(readCheckpoint(file, 'users')).toBe(30);
    const failures = cursorFailures(file, 'users');
    expect(failures).toEqual([expect.objectContaining({ checkpoint_name: 'users', key: 20, last_error: 'smtp refused' })]);
    expect(JSON.parse(failures[0]!.row!)).toEqual({ id: 20, email: 'u2@example.com', code: 'c0002' });
    expect(p.stats()).toMatchObject({ acked: 2, failed: 1 });
  });

  test('a new cursor resumes after the checkpoint; text keys work too', async () => {
    const file = usersDb(5);
    const one = cursor({ database: file, table: 'users', key: 'code', checkpointName: 'codes' });
    const ms = one.p.handleDemand(3);
    await ack([ms[0]!, ms[1]!]);
    one.p.terminate();
    expect(readCheckpoint(file, 'codes')).toBe('c0002');
    const two = cursor({ database: file, table: 'users', key: 'code', checkpointName: 'codes' });
    expect(two.p.handleDemand(10).map((m) => (m.data as { code: string }).code)).toEqual(['c0003', 'c0004', 'c0005']);
  });

  test('at the end of the table it polls for new rows', async () => {
    const file = usersDb(1);
    const { p, c } = cursor({ database: file, table: 'users', pollInterval: 10 });
    expect(p.handleDemand(3)).toHaveLength(1);
    const db = open(file);
    db.prepare(`INSERT INTO users (id, email) VALUES (11, 'late@example.com'), (12, 'later@example.com')`).run();
    db.close();
    await waitFor(() => c.pushed.length === 2, 'new rows pushed');
    expect(c.pushed.map((m) => (m.data as { id: number }).id)).toEqual([11, 12]);
    p.prepareForDraining();
  });

  test('options, table and key are checked; concurrency above 1 is refused', () => {
    const file = usersDb(1);
    expect(() => sqliteCursor({ database: file } as never)).toThrow(/`sqliteCursor.table`/);
    expect(() => sqliteCursor({ database: file, table: 'users', key: 'id; --' })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION' }));
    expect(() => sqliteCursor({ database: file, table: 'users', batch: 5 } as never)).toThrow(/Unknown option `sqliteCursor.batch`/);
    expect(() => sqliteCursor({ database: file, table: 'nope' })(0).init(controller())).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_SQLITE_SCHEMA' }));
    expect(() => sqliteCursor({ database: file, table: 'users', key: 'uuid' })(0).init(controller())).toThrow(
      expect.objectContaining({ code: 'ERR_THROUGHWAY_UNKNOWN_COLUMN', message: expect.stringContaining('id, email, code') }),
    );
    expect(() => sqliteCursor({ database: file, table: 'users' })(1)).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION' }));
  });
});
