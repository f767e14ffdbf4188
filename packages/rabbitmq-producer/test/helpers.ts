// Shared by the RabbitMQ producer tests: the machine's broker (guest/guest on 127.0.0.1:5672),
// uniquely named queues and exchanges deleted after each test, a SQLite sink that counts what
// was processed by message id, and child processes running real pipelines.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import amqplib, { type ChannelModel } from 'amqplib';
import Database from 'better-sqlite3';
import { afterAll, afterEach } from 'vitest';
import { childRunner } from '../../../test-support/child.js';

export const URL = process.env.THROUGHWAY_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const FIXTURES = fileURLToPath(new globalThis.URL('./fixtures/', import.meta.url));
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(20);
  }
}

let admin: ChannelModel | undefined;
const queues = new Set<string>();
const exchanges = new Set<string>();

/** The tests' own connection, for publishing and inspecting (not the producer's). */
export async function adminConnection(): Promise<ChannelModel> {
  admin ??= await amqplib.connect(URL, { clientProperties: { connection_name: `throughway-test-admin:${process.pid}` } });
  return admin;
}

/** A queue or exchange name no other test (or agent) uses; deleted after the test. */
export function uniqueName(kind: 'queue' | 'exchange', label: string): string {
  const name = `tw-test-${label}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  (kind === 'queue' ? queues : exchanges).add(name);
  return name;
}

afterEach(async () => {
  if (queues.size === 0 && exchanges.size === 0) return;
  const ch = await (await adminConnection()).createChannel();
  for (const q of queues) await ch.deleteQueue(q);
  for (const e of exchanges) await ch.deleteExchange(e);
  queues.clear();
  exchanges.clear();
  await ch.close();
});

afterAll(async () => {
  await admin?.close();
  admin = undefined;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Publishes `count` persistent messages `{"id":"<prefix>-<i>", ...extra}` (message id set too), with publisher confirms. */
export async function publish(queue: string, count: number, options: { prefix?: string; extra?: (i: number) => Record<string, unknown>; exchange?: string } = {}): Promise<string[]> {
  const ch = await (await adminConnection()).createConfirmChannel();
  const ids: string[] = [];
  const prefix = options.prefix ?? 'm';
  for (let i = 1; i <= count; i++) {
    const id = `${prefix}-${i}`;
    ids.push(id);
    const body = Buffer.from(JSON.stringify({ id, ...options.extra?.(i) }));
    const ok = options.exchange ? ch.publish(options.exchange, '', body, { messageId: id, persistent: true }) : ch.sendToQueue(queue, body, { messageId: id, persistent: true });
    if (!ok) await new Promise((resolve) => ch.once('drain', resolve));
    if (i % 5000 === 0) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  await ch.close();
  return ids;
}

/** Ready and unacked messages of a queue, and its consumers (via a passive declare). */
export async function depth(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  const ch = await (await adminConnection()).createChannel();
  try {
    const { messageCount, consumerCount } = await ch.checkQueue(queue);
    return { messageCount, consumerCount };
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** Takes every message left in a queue (a dead-letter queue, say): bodies and headers. */
export async function drainQueue(queue: string): Promise<{ body: string; headers: Record<string, unknown> }[]> {
  const ch = await (await adminConnection()).createChannel();
  const out: { body: string; headers: Record<string, unknown> }[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) break;
    out.push({ body: m.content.toString(), headers: (m.properties.headers ?? {}) as Record<string, unknown> });
  }
  await ch.close();
  return out;
}

const execFileAsync = promisify(execFile);

/**
 * Closes, from the broker's side, the connection with exactly this name: the producer's own,
 * never another agent's (`rabbitmqctl close_connection` takes the connection's pid).
 */
export async function closeConnectionByName(name: string): Promise<void> {
  const { stdout } = await execFileAsync('rabbitmqctl', ['-q', 'list_connections', 'pid', 'name', 'client_properties'], { timeout: 60_000 });
  const line = stdout.split('\n').find((l) => l.includes(`"${name}"`) || l.includes(`<<"${name}">>`));
  if (!line) throw new Error(`no connection named ${name} in:\n${stdout}`);
  const pid = line.split('\t')[0]!;
  await execFileAsync('rabbitmqctl', ['close_connection', pid, 'throughway test: broker-side close'], { timeout: 60_000 });
}

const dirs: string[] = [];
/** A fresh SQLite sink file: the fixture handlers write one row per message processed. */
export function tmpSink(): string {
  const dir = mkdtempSync(join(tmpdir(), 'throughway-rabbitmq-'));
  dirs.push(dir);
  return join(dir, 'sink.db');
}

export interface SinkRow {
  id: string;
  pid: number;
  redelivered: number;
  outcome: string;
  /** `typeof message.data` in the handler. */
  kind: string;
}

export function sinkRows(sink: string): SinkRow[] {
  const db = new Database(sink, { timeout: 10_000 });
  try {
    const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'seen'`).get();
    return exists ? (db.prepare('SELECT id, pid, redelivered, outcome, kind FROM seen ORDER BY rowid').all() as SinkRow[]) : [];
  } finally {
    db.close();
  }
}

export function distinctIds(sink: string, outcome = 'ok'): number {
  const db = new Database(sink, { timeout: 10_000 });
  try {
    const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'seen'`).get();
    return exists ? (db.prepare('SELECT count(DISTINCT id) FROM seen WHERE outcome = ?').pluck().get(outcome) as number) : 0;
  } finally {
    db.close();
  }
}

/** id → how many times it was written to the sink with this outcome. */
export function countsById(sink: string, outcome = 'ok'): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of sinkRows(sink)) if (r.outcome === outcome) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
  return counts;
}

export type { Child } from '../../../test-support/child.js';

/** Runs a fixture script with a JSON argument; stdout and stderr are kept for failure messages. */
export const runChild = childRunner(FIXTURES);
