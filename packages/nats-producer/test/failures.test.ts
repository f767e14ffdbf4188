// Failure outcomes against the real server: nak with a delay, term, max_deliver, the
// dead-letter subject, and working() renewals. Inline runtime, so the handler's call log
// (globalThis.natsTestLog) is the test's own.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { natsJetStream, type NatsJetStreamOptions } from '@throughway/nats-producer';
import { jetstream } from '@nats-io/jetstream';
import { consumerState, FIXTURES, nats, publishIds, SERVER, sleep, testStream, waitFor, type TestStream } from './helpers.js';

interface Call { id: number; deliveryCount: number; at: number; data?: unknown; metadata?: Record<string, unknown> }
const log = (): Call[] => ((globalThis as { natsTestLog?: Call[] }).natsTestLog ??= []);
const calls = (id: number) => log().filter((c) => c.id === id);

let stream: TestStream | undefined;
const extra: TestStream[] = [];
beforeEach(() => {
  (globalThis as { natsTestLog?: Call[] }).natsTestLog = [];
});
afterEach(async () => {
  for (const s of [stream, ...extra.splice(0)]) await s?.delete();
  stream = undefined;
});

async function run(options: Omit<NatsJetStreamOptions, 'stream' | 'consumer'>, until: () => boolean | Promise<boolean>, context: Record<string, unknown> = {}) {
  const source = natsJetStream({ servers: SERVER, stream: stream!.name, consumer: stream!.consumer, ...options });
  current = source;
  const pipeline = await Pipeline.start({
    name: 'nats-failures',
    handlers: new URL('outcome-handlers.mjs', `file://${FIXTURES}`),
    producer: { module: source },
    processors: { default: { runtime: 'inline', concurrency: 2 } },
    context,
  });
  try {
    await waitFor(until, 'the expected outcome', 45_000);
  } finally {
    await pipeline.stop();
  }
  return source;
}

describe('failed messages', () => {
  test('a failure is naked with the retry delay and delivered again; the second delivery succeeds and is acked', async () => {
    stream = await testStream();
    await publishIds(stream, 1, 20, (id) => (id === 7 ? { fail: 'first' } : {}));
    const source = await run({ retryBackoff: { minMs: 600, type: 'constant' } }, () => calls(7).length === 2 && source_acked(20));
    const seven = calls(7);
    expect(seven.map((c) => c.deliveryCount)).toEqual([1, 2]);
    // The server held it back for the nak's delay (a lower bound, not a race).
    expect(seven[1]!.at - seven[0]!.at).toBeGreaterThanOrEqual(550);
    expect(source.stats()).toMatchObject({ acked: 20, naked: 1, terminated: 0 });
    expect(await consumerState(stream)).toMatchObject({ pending: 0, ackPending: 0, delivered: 21 });
  });

  test('configureAck(m, { retry: false }) terminates: never delivered again, even past ack_wait', async () => {
    stream = await testStream({ ack_wait: 1_000_000_000 });
    await publishIds(stream, 1, 10, (id) => (id === 3 ? { fail: 'term' } : {}));
    const source = await run({}, () => source_acked(9) && calls(3).length === 1);
    expect(source.stats()).toMatchObject({ acked: 9, terminated: 1, naked: 0 });
    await sleep(2500); // more than ack_wait: a message that was not terminated would be back by now
    expect(calls(3)).toHaveLength(1);
    expect(await consumerState(stream)).toMatchObject({ pending: 0, ackPending: 0, delivered: 10 });
  });

  test("a poison message stops at the consumer's max_deliver, is terminated and published to the dead-letter subject with the reason", async () => {
    stream = await testStream({ max_deliver: 3 });
    const dead = await testStream({}, 'twdead');
    extra.push(dead);
    await publishIds(stream, 1, 10, (id) => (id === 5 ? { fail: 'always' } : {}), true);
    const source = await run({ retryBackoff: { minMs: 50, type: 'constant' }, deadLetter: { subject: dead.subject } }, () => source_acked(9) && source_dead(1));
    expect(calls(5).map((c) => c.deliveryCount)).toEqual([1, 2, 3]);
    expect(source.stats()).toMatchObject({ acked: 9, naked: 2, terminated: 1, deadLettered: 1, errors: 0 });
    expect(await consumerState(stream)).toMatchObject({ pending: 0, ackPending: 0 });

    const { nc } = await nats();
    const stored = await jetstream(nc).consumers.get(dead.name, dead.consumer).then((c) => c.next({ expires: 5000 }));
    expect(stored).not.toBeNull();
    expect(JSON.parse(stored!.string())).toEqual({ n: 5, fail: 'always' });
    expect(stored!.headers!.get('Throughway-Reason')).toBe('poison 5');
    expect(stored!.headers!.get('Throughway-Deliveries')).toBe('3');
    expect(stored!.headers!.get('Throughway-Stream')).toBe(stream.name);
    expect(stored!.headers!.get('Throughway-Subject')).toBe(stream.subject);
    expect(stored!.headers!.get('Msg-Id-Test')).toBe('5'); // the original headers travel along
    stored!.ack();
  });

  test('a dead-letter publish that fails leaves the message unacked (it comes back), counted each time, reported once', async () => {
    stream = await testStream({ max_deliver: 2, ack_wait: 1_000_000_000 });
    await publishIds(stream, 1, 4, (id) => (id === 2 || id === 3 ? { fail: 'term' } : {}));
    const reported: { code?: string }[] = [];
    // No stream captures this subject: the JetStream publish is refused.
    const source = await run({ deadLetter: { subject: `${stream.name}_nowhere.dead` }, onError: (e) => reported.push(e as { code?: string }) }, () => calls(2).length === 2 && calls(3).length === 2 && (current?.stats().errors ?? 0) >= 4);
    expect(source.stats()).toMatchObject({ acked: 2, terminated: 0, deadLettered: 0, errors: 4 });
    expect(reported.map((e) => e.code)).toEqual(['ERR_THROUGHWAY_NATS_DEAD_LETTER']);
  });

  test('with an unlimited consumer, the producer\'s maxDeliver bounds the loop', async () => {
    stream = await testStream({ max_deliver: -1 });
    await publishIds(stream, 1, 4, (id) => (id === 2 ? { fail: 'always' } : {}));
    const source = await run({ maxDeliver: 4, retryBackoff: { minMs: 20, type: 'constant' } }, () => source_acked(3) && source_terminated(1));
    expect(calls(2).map((c) => c.deliveryCount)).toEqual([1, 2, 3, 4]);
    expect(source.stats()).toMatchObject({ acked: 3, naked: 3, terminated: 1, deadLettered: 0 });
    await sleep(300);
    expect(calls(2)).toHaveLength(4);
  });

  test('onFailure: "term" ends a failure at its first delivery', async () => {
    stream = await testStream();
    await publishIds(stream, 1, 3, (id) => (id === 1 ? { fail: 'first' } : {}));
    const source = await run({ onFailure: 'term' }, () => source_acked(2) && source_terminated(1));
    expect(calls(1)).toHaveLength(1);
    expect(source.stats()).toMatchObject({ naked: 0, terminated: 1 });
  });

  test('a message held longer than half of ack_wait gets working() renewals and is not delivered again', async () => {
    stream = await testStream({ ack_wait: 2_000_000_000 });
    await publishIds(stream, 1, 1);
    const source = await run({}, () => source_acked(1), { holdMs: 3500 });
    expect(calls(1)).toHaveLength(1);
    expect(source.stats().renewed).toBeGreaterThanOrEqual(2);
    expect(await consumerState(stream)).toMatchObject({ pending: 0, ackPending: 0, delivered: 1 });
  });

  test('metadata: headers on request, redelivered, timestamp; body as a string', async () => {
    stream = await testStream();
    await publishIds(stream, 1, 1, () => ({}), true);
    await run({ body: 'string', metadata: ['stream', 'consumer', 'subject', 'sequence', 'deliveryCount', 'redelivered', 'timestamp', 'headers'] }, () => source_acked(1));
    const [call] = calls(1);
    expect(call!.data).toBe('{"n":1}');
    expect(call!.metadata).toMatchObject({ stream: stream.name, consumer: stream.consumer, subject: stream.subject, sequence: 1, deliveryCount: 1, redelivered: false, headers: { 'Msg-Id-Test': ['1'] } });
    expect(Date.parse(call!.metadata!.timestamp as string)).toBeGreaterThan(Date.now() - 60_000);
  });

  test('body as bytes: a Uint8Array of its own, not a view of the socket buffer', async () => {
    stream = await testStream();
    await publishIds(stream, 1, 3);
    await run({}, () => source_acked(3));
    const data = calls(2)[0]!.data as Uint8Array;
    expect(data).toBeInstanceOf(Uint8Array);
    expect(new TextDecoder().decode(data)).toBe('{"n":2}');
    expect(data.byteOffset).toBe(0);
    expect(data.buffer.byteLength).toBe(data.byteLength);
  });
});

// The most recent source's counters, read through the pipeline's telemetry-free path: the
// factory keeps its producers, so the test reads them where `run` left them.
let current: ReturnType<typeof natsJetStream> | undefined;
function source_acked(n: number): boolean {
  return (current?.stats().acked ?? 0) >= n;
}
function source_terminated(n: number): boolean {
  return (current?.stats().terminated ?? 0) >= n;
}
function source_dead(n: number): boolean {
  return (current?.stats().deadLettered ?? 0) >= n;
}
