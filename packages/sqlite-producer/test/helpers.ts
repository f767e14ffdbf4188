// Shared by the sqlite-producer tests: temporary database files, a stand-in controller for
// driving producers by hand, and child processes running real pipelines.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll } from 'vitest';
import type { ThroughwayMessage } from '@throughway/core';
import { enqueue, migrate, queueAcknowledger } from '@throughway/sqlite-producer';
import { childRunner } from '../../../test-support/child.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(pred: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(10);
  }
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

let seq = 0;
/** A fresh path for a SQLite file in a directory removed after the test file. */
export function tmpDb(name = 'queue'): string {
  const dir = mkdtempSync(join(tmpdir(), 'throughway-sqlite-'));
  dirs.push(dir);
  return join(dir, `${name}-${++seq}.db`);
}

/** Opens a connection for the test's own inspection. */
export function open(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  return db;
}

/** A controller that collects what a producer pushes outside handleDemand. */
export function controller(): { push(events: unknown[]): void; pushed: ThroughwayMessage[]; pipelineName: string; index: number; hasTransformer: boolean } {
  const pushed: ThroughwayMessage[] = [];
  return {
    pushed,
    push(events: unknown[]) {
      pushed.push(...(events as ThroughwayMessage[]));
    },
    pipelineName: 'test',
    index: 0,
    hasTransformer: false,
  };
}

/** Marks a main-thread message failed the way the pipeline does. */
export function fail<M extends ThroughwayMessage>(m: M, reason: unknown): M {
  m.status = { kind: 'failed', reason };
  return m;
}

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export type { Child } from '../../../test-support/child.js';

/** Runs a fixture script with a JSON argument; stdout and stderr are kept for failure messages. */
export const runChild = childRunner(FIXTURES);

/** Rows of the side table the fixture handler writes: one per message handled. */
export interface Processed {
  id: number;
  pid: number;
  started_at: number;
  ended_at: number;
}

export function processedRows(side: string): Processed[] {
  const db = open(side);
  try {
    const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'processed'`).get();
    if (!exists) return [];
    return db.prepare('SELECT id, pid, started_at, ended_at FROM processed ORDER BY id').all() as Processed[];
  } finally {
    db.close();
  }
}

export function processedCount(side: string): number {
  const db = open(side);
  try {
    const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'processed'`).get();
    return exists ? (db.prepare('SELECT count(*) FROM processed').pluck().get() as number) : 0;
  } finally {
    db.close();
  }
}

/** A fresh queue file holding `payloads`. */
export function tmpDbWith(payloads: (string | Buffer)[], table?: string): string {
  const file = tmpDb();
  migrate(file, { table });
  enqueue(file, payloads, { table });
  return file;
}

/** Acks queue messages the way the pipeline does (one call for their shared ref). */
export function ack(successful: ThroughwayMessage[], failed: ThroughwayMessage[] = []): Promise<void> {
  const ref = (successful[0] ?? failed[0])!.acknowledger!.ref;
  return queueAcknowledger.ack(ref, successful, failed) as Promise<void>;
}
