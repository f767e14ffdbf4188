// The queue side of resuming: generation that picks up where a killed run stopped, the run record
// that refuses to mix runs or to share a queue with a live process, dead letters by reason.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { enqueue, leasedRows } from '@throughway/sqlite-producer';
import { UsageError } from '../src/args.js';
import { EventGenerator } from '../src/generator.js';
import { DEAD_TABLE, QUEUE_TABLE, fillQueue, openQueue, queueState, releaseLeasesOf } from '../src/queue.js';
import { claimRun, createRunRecord, readRunRecord, recordEnqueued, releaseRun } from '../src/run-record.js';
import { tempDir } from './helpers.js';

const { dir, cleanup } = tempDir('mystex-queue-');
afterAll(cleanup);
let n = 0;
const fresh = () => openQueue(path.join(dir, `q${n++}.db`));
const payloads = (db: ReturnType<typeof openQueue>) => db.prepare(`SELECT payload FROM ${QUEUE_TABLE} ORDER BY id`).pluck().all() as string[];

describe('fillQueue', () => {
  it('enqueues the whole run once, with its tally, and finds it there the next time', () => {
    const db = fresh();
    const first = fillQueue(db, 5, 25_000);
    expect(first).toMatchObject({ resumed: false, enqueuedNow: 25_000 });
    expect(payloads(db)).toEqual(new EventGenerator(5, 25_000).all());
    const again = fillQueue(db, 5, 25_000);
    expect(again).toMatchObject({ resumed: true, enqueuedNow: 0 });
    expect(again.tally).toEqual(first.tally);
    expect(readRunRecord(db)).toMatchObject({ seed: 5, events: 25_000, enqueued: 25_000 });
    db.close();
  });

  it('resumes generation where a run killed while enqueueing stopped', () => {
    const db = fresh();
    const all = new EventGenerator(6, 25_000).all();
    // What a run killed after its first chunk left behind: the chunk and the count, together.
    createRunRecord(db, 6, 25_000);
    db.transaction(() => {
      enqueue(db, all.slice(0, 10_000), { table: QUEUE_TABLE });
      recordEnqueued(db, 10_000);
    })();
    const filled = fillQueue(db, 6, 25_000);
    expect(filled).toMatchObject({ resumed: true, enqueuedNow: 15_000 });
    expect(payloads(db)).toEqual(all);
    db.close();
  });

  it('refuses to resume a queue of another seed or size, naming the options that would', () => {
    const db = fresh();
    fillQueue(db, 1, 1_000);
    expect(() => fillQueue(db, 2, 1_000)).toThrow(UsageError);
    expect(() => fillQueue(db, 1, 2_000)).toThrow(/--events 1000 --seed 1/);
    db.close();
  });
});

describe('run record', () => {
  it('refuses a queue held by a live process, takes over from a dead one and releases its leases', () => {
    const db = fresh();
    fillQueue(db, 1, 100);
    expect(claimRun(db, process.ppid)).toBeNull();
    expect(() => claimRun(db, process.pid)).toThrow(/another demo process \(pid \d+\)/);
    // A pid that certainly exited: a child we waited for.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout);
    db.prepare('UPDATE mystex_run SET pid = ?').run(deadPid);
    // What a claim of rows 1..10 by the dead process left behind: one lease row.
    db.prepare(`INSERT INTO ${QUEUE_TABLE}_leases (first_id, last_id, leased_by, lease_until, created_at) VALUES (1, 10, ?, ?, ?)`).run(`${os.hostname()}:${deadPid}:0:abcd`, Date.now() + 60_000, Date.now());
    expect(leasedRows(db, { table: QUEUE_TABLE }).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(claimRun(db, process.pid)).toBe(deadPid);
    expect(releaseLeasesOf(db, deadPid)).toBe(10);
    expect(leasedRows(db, { table: QUEUE_TABLE })).toEqual([]);
    releaseRun(db, process.pid);
    expect(readRunRecord(db)!.pid).toBeNull();
    db.close();
  });
});

describe('queueState', () => {
  it('counts what is left and the dead letters by the reason code that starts their error', () => {
    const db = fresh();
    fillQueue(db, 1, 50);
    const insert = db.prepare(`INSERT INTO ${DEAD_TABLE} (id, payload, attempts, last_error, created_at, failed_at) VALUES (?, 'x', 1, ?, 0, 0)`);
    insert.run(1001, 'bad_json: payload is not JSON');
    insert.run(1002, 'bad_json: event must be a JSON object');
    insert.run(1003, 'negative_amount: order.created ord_1 has a negative amount (-5)');
    insert.run(1004, 'SqliteError: FOREIGN KEY constraint failed');
    expect(queueState(db)).toEqual({ remaining: 50, deadLetters: { bad_json: 2, negative_amount: 1, other: 1 } });
    db.close();
  });
});
