// Shared by the NATS tests: uniquely named streams on the machine's NATS server (deleted after
// each test file), bulk publishing, a SQLite sink to count by id, and child processes.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll } from 'vitest';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, StorageType, jetstreamManager, type ConsumerConfig, type JetStreamManager } from '@nats-io/jetstream';
import { childRunner } from '../../../test-support/child.js';

export const SERVER = process.env.THROUGHWAY_NATS ?? '127.0.0.1:4222';
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(20);
  }
}

let admin: { nc: NatsConnection; jsm: JetStreamManager } | undefined;
const streams = new Set<string>();
const dirs: string[] = [];

/** The test file's own connection, for setting up and inspecting streams. */
export async function nats(): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  if (!admin) {
    const nc = await connect({ servers: SERVER, name: 'throughway-test-admin' });
    admin = { nc, jsm: await jetstreamManager(nc) };
  }
  return admin;
}

afterAll(async () => {
  if (admin) {
    for (const name of streams) await admin.jsm.streams.delete(name).catch(() => undefined);
    await admin.nc.close();
    admin = undefined;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export interface TestStream {
  /** Stream name; its subjects are `<name>.>`. */
  name: string;
  subject: string;
  consumer: string;
  delete(): Promise<void>;
}

/**
 * A stream with a unique name (other agents and CI share the server) in memory, and a durable
 * pull consumer on it with explicit acks.
 */
export async function testStream(consumer: Partial<ConsumerConfig> = {}, label = 'tw'): Promise<TestStream> {
  const { jsm } = await nats();
  const name = `${label}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.Memory });
  streams.add(name);
  await jsm.consumers.add(name, { durable_name: 'workers', ack_policy: AckPolicy.Explicit, max_ack_pending: 20_000, ...consumer });
  return {
    name,
    subject: `${name}.events`,
    consumer: 'workers',
    async delete() {
      streams.delete(name);
      await jsm.streams.delete(name).catch(() => undefined);
    },
  };
}

/** Publishes `{"n": id, ...extra}` for ids `from..to` (without waiting for each ack) and waits until the stream holds them. */
export async function publishIds(stream: TestStream, from: number, to: number, extra: (id: number) => Record<string, unknown> = () => ({}), withHeaders = false): Promise<void> {
  const { nc, jsm } = await nats();
  const before = (await jsm.streams.info(stream.name)).state.messages;
  for (let id = from; id <= to; id++) {
    const h = withHeaders ? natsHeaders() : undefined;
    h?.set('Msg-Id-Test', String(id));
    nc.publish(stream.subject, JSON.stringify({ n: id, ...extra(id) }), h ? { headers: h } : undefined);
    if (id % 5000 === 0) await nc.flush();
  }
  await nc.flush();
  const want = before + (to - from + 1);
  await waitFor(async () => (await jsm.streams.info(stream.name)).state.messages >= want, `${want} messages in ${stream.name}`);
}

/** The consumer's counts as the server sees them. */
export async function consumerState(stream: TestStream): Promise<{ pending: number; ackPending: number; redelivered: number; delivered: number; ackFloor: number }> {
  const { jsm } = await nats();
  const info = await jsm.consumers.info(stream.name, stream.consumer);
  return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered, delivered: info.delivered.consumer_seq, ackFloor: info.ack_floor.stream_seq };
}

/** A fresh path for a SQLite sink file, removed after the test file. */
export function tmpSink(): string {
  const dir = mkdtempSync(join(tmpdir(), 'throughway-nats-'));
  dirs.push(dir);
  return join(dir, 'sink.db');
}

// Reads the sink with a connection of the test's own; an absent table reads as `empty`.
function readSink<T>(sink: string, empty: T, read: (db: Database.Database) => T): T {
  const db = new Database(sink, { timeout: 10000 });
  try {
    return db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'processed'`).get() ? read(db) : empty;
  } finally {
    db.close();
  }
}

/** Rows of the sink the fixture handler writes: one per message handled. */
export function sinkRows(sink: string): { id: number; pid: number; delivery: number }[] {
  return readSink(sink, [], (db) => db.prepare('SELECT id, pid, delivery FROM processed').all() as { id: number; pid: number; delivery: number }[]);
}

export function sinkDistinct(sink: string): number {
  return readSink(sink, 0, (db) => db.prepare('SELECT count(DISTINCT id) FROM processed').pluck().get() as number);
}

/** Times each id occurs in the sink. */
export function countsById(sink: string): Map<number, number> {
  const seen = new Map<number, number>();
  for (const r of sinkRows(sink)) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
  return seen;
}

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export type { Child } from '../../../test-support/child.js';

/** Runs a fixture script with a JSON argument; stdout and stderr are kept for failure messages. */
export const runChild = childRunner(FIXTURES);
