// Node 24.19-24.21 abort when a worker thread that used better-sqlite3 12 ends: the pipeline says
// so once, at start, naming the versions and the fix. process.versions.node is overridden here to
// walk that path on any Node; the threads themselves run on the real version.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Pipeline, fromIterable } from '@throughway/core';
import { resolvedSqliteVersion, sqliteThreadHazard } from '@throughway/workers/internal';
import { tmpDb } from './helpers.js';

const HANDLERS = new URL('./fixtures/repo-batch-handlers.mjs', import.meta.url);
const SQLITE = resolvedSqliteVersion(HANDLERS)!;
const REAL_NODE = process.versions.node;

function pretendNode(version: string): void {
  Object.defineProperty(process.versions, 'node', { value: version, configurable: true, enumerable: true });
}
afterEach(() => pretendNode(REAL_NODE));

/** A logger that keeps what core logs (core needs only warn and error). */
function recordingLogger() {
  const warnings: string[] = [];
  const errors: string[] = [];
  return { warnings, errors, logger: { warn: (_o: unknown, m: string) => warnings.push(m), error: (_o: unknown, m: string) => errors.push(m), info() {}, debug() {}, trace() {} } };
}

async function runToCompletion(log: ReturnType<typeof recordingLogger>, file: string, count: number): Promise<void> {
  const logger = log.logger;
  const pipeline = await Pipeline.start({
    name: `hazard-${Math.random().toString(36).slice(2, 8)}`,
    handlers: HANDLERS,
    producer: { module: fromIterable(Array.from({ length: count }, (_, i) => i)) },
    processors: { default: { concurrency: 1 } },
    batchers: { default: { batchSize: 10, batchTimeout: 50 } },
    context: { file },
    logger: logger as never,
  });
  const db = new Database(file, { readonly: true, timeout: 10000 });
  try {
    const deadline = Date.now() + 30_000;
    while ((db.prepare('SELECT count(*) AS c FROM items').get() as { c: number }).c < count) {
      if (Date.now() > deadline) throw new Error('the rows never arrived; logged errors: ' + JSON.stringify(log.errors));
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    db.close();
  }
  await pipeline.stop();
}

describe('sqliteThreadHazard', () => {
  it('names Node 24.19.0 to 24.21.x with better-sqlite3 12, and nothing else', () => {
    for (const node of ['24.19.0', '24.20.1', '24.21.0', '24.21.9']) expect(sqliteThreadHazard(node, '12.11.1'), node).toMatch(/^Node 24\.\d+\.\d+ with better-sqlite3 12\.11\.1/);
    for (const node of ['20.20.2', '22.23.5', '24.18.1', '24.22.0', '24.22.3', '26.12.1']) expect(sqliteThreadHazard(node, '12.11.1'), node).toBeUndefined();
    expect(sqliteThreadHazard('24.20.0', '13.2.0')).toBeUndefined();
    expect(sqliteThreadHazard('24.20.0', undefined)).toBeUndefined();
  });

  it('says what aborts and how to fix it', () => {
    const message = sqliteThreadHazard('v24.20.0', '12.11.1')!;
    expect(message).toContain('Node 24.20.0 with better-sqlite3 12.11.1 in worker threads');
    expect(message).toContain('Assertion failed: (env) != nullptr');
    expect(message).toContain('upgrade Node to 24.22 or later');
    expect(message).toContain('use better-sqlite3 13');
  });
});

describe('Pipeline.start on a fine Node (runs first: the warning is once per process)', () => {
  it('logs nothing about SQLite', async () => {
    pretendNode('24.22.3');
    const log = recordingLogger();
    await runToCompletion(log, tmpDbWith(), 5);
    expect(log.warnings).toEqual([]);
  });
});

describe('Pipeline.start on an affected Node', () => {
  it('logs the hazard once per process, at start, and still runs a sqliteRepo batch pipeline to completion', async () => {
    expect(SQLITE).toMatch(/^12\./);
    const file = tmpDb('hazard');
    const setup = new Database(file);
    setup.exec('CREATE TABLE items (n INTEGER PRIMARY KEY)');
    setup.close();

    pretendNode('24.20.0');
    const first = recordingLogger();
    await runToCompletion(first, file, 50);
    expect(first.warnings).toEqual([sqliteThreadHazard('24.20.0', SQLITE)]);
    expect(first.errors).toEqual([]);

    const second = recordingLogger();
    await runToCompletion(second, tmpDbWith(), 5);
    expect(second.warnings).toEqual([]);
  });
});

function tmpDbWith(): string {
  const file = tmpDb('hazard');
  const db = new Database(file);
  db.exec('CREATE TABLE items (n INTEGER PRIMARY KEY)');
  db.close();
  return file;
}
