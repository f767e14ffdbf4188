// Real pipelines over real RabbitMQ queues: every message acked once, dead-lettering of rejects,
// requeue_once, a poison message that does not loop, per-message onFailure, payloads and
// metadata, and a drain that cancels the consumer and finishes what is in flight.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { rabbitmqQueue, type RabbitmqQueueOptions } from '@throughway/rabbitmq-producer';
import { URL, adminConnection, countsById, depth, distinctIds, drainQueue, publish, sinkRows, tmpSink, uniqueName, waitFor } from './helpers.js';

const handlers = new globalThis.URL('./fixtures/sink-handlers.mjs', import.meta.url);

async function start(source: ReturnType<typeof rabbitmqQueue>, sink: string, options: { runtime?: 'inline' | 'threads'; batch?: boolean; delayMs?: number; concurrency?: number } = {}) {
  return Pipeline.start({
    name: `rabbitmq-test-${Math.random().toString(36).slice(2, 8)}`,
    handlers,
    producer: { module: source },
    processors: { default: { runtime: options.runtime ?? 'inline', concurrency: options.concurrency ?? 2 } },
    batchers: options.batch ? { default: { batchSize: 100, batchTimeout: 50 } } : undefined,
    context: { sink, delayMs: options.delayMs ?? 0, batch: Boolean(options.batch) },
  });
}

function queueSource(queue: string, extra: Partial<RabbitmqQueueOptions> = {}) {
  return rabbitmqQueue({ url: URL, queue, declare: { durable: false }, metadata: ['redelivered'], body: 'string', ...extra });
}

/** A dead-letter exchange (fanout) and the queue it routes to. */
async function deadLetterSetup(): Promise<{ exchange: string; dlq: string }> {
  const exchange = uniqueName('exchange', 'dlx');
  const dlq = uniqueName('queue', 'dlq');
  const ch = await (await adminConnection()).createChannel();
  await ch.assertExchange(exchange, 'fanout', { durable: false });
  await ch.assertQueue(dlq, { durable: false });
  await ch.bindQueue(dlq, exchange, '');
  await ch.close();
  return { exchange, dlq };
}

describe('rabbitmq source in a pipeline', () => {
  test('100,000 messages through processor threads and a batcher: each processed and acked once, the queue ends empty', async () => {
    const N = 100_000;
    const queue = uniqueName('queue', '100k');
    const sink = tmpSink();
    let ackedByFrames = 0;
    const onAck = (e: unknown) => {
      const event = e as { queue: string; count: number };
      if (event.queue === queue) ackedByFrames += event.count;
    };
    subscribe('throughway:rabbitmq:ack', onAck);
    try {
      const source = queueSource(queue);
      const pipeline = await start(source, sink, { runtime: 'threads', batch: true, concurrency: 1 });
      const started = performance.now();
      await publish(queue, N);
      await waitFor(() => source.stats().acked === N, `${N} acks`, 300_000);
      const { unacked } = await pipeline.stop();
      const seconds = (performance.now() - started) / 1000;
      console.log(`rabbitmq 100k: published and consumed in ${seconds.toFixed(1)} s, prefetch ${source.producers[0]!.prefetch}, ${JSON.stringify(source.stats())}`);
      expect(unacked).toBe(0);
      expect(source.stats()).toMatchObject({ delivered: N, acked: N, rejected: 0, requeued: 0, dropped: 0, disconnects: 0 });
      expect(ackedByFrames).toBe(N);
      // Batched: far fewer ack frames than messages.
      expect(source.stats().ackFrames).toBeLessThan(N / 10);
      const counts = countsById(sink);
      expect(counts.size).toBe(N);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      expect(await depth(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
    } finally {
      unsubscribe('throughway:rabbitmq:ack', onAck);
    }
  }, 400_000);

  test('rejected messages go to the dead-letter exchange of a quorum queue, once each; the rest are acked', async () => {
    const { exchange, dlq } = await deadLetterSetup();
    const queue = uniqueName('queue', 'quorum-dlx');
    const sink = tmpSink();
    const source = rabbitmqQueue({ url: URL, queue, declare: { arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': exchange } }, metadata: ['redelivered'], body: 'string' });
    const pipeline = await start(source, sink, { batch: true });
    await publish(queue, 200, { extra: (i) => (i % 20 === 0 ? { fail: true } : {}) });
    await waitFor(() => source.stats().acked + source.stats().rejected === 200, 'every message settled');
    await pipeline.stop();
    expect(source.stats()).toMatchObject({ delivered: 200, acked: 190, rejected: 10, requeued: 0 });
    const dead = await drainQueue(dlq);
    expect(dead.map((d) => JSON.parse(d.body).id).sort()).toEqual(Array.from({ length: 10 }, (_, k) => `m-${(k + 1) * 20}`).sort());
    // The broker says why: rejected, from our queue.
    expect(dead[0]!.headers['x-death']).toEqual([expect.objectContaining({ reason: 'rejected', queue })]);
    expect(sinkRows(sink).filter((r) => r.outcome === 'failed')).toHaveLength(10);
    expect(distinctIds(sink)).toBe(190);
    expect(await depth(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  test("onFailure 'requeue_once': a failing message is delivered twice (the second time redelivered), then rejected to the dead-letter exchange", async () => {
    const { exchange, dlq } = await deadLetterSetup();
    const queue = uniqueName('queue', 'requeue-once');
    const sink = tmpSink();
    const source = queueSource(queue, { onFailure: 'requeue_once', declare: { durable: false, arguments: { 'x-dead-letter-exchange': exchange } } });
    const pipeline = await start(source, sink);
    await publish(queue, 30, { extra: (i) => (i === 7 ? { fail: true } : {}) });
    await waitFor(() => source.stats().acked === 29 && source.stats().rejected === 1, '29 acks and one final reject');
    await pipeline.stop();
    expect(source.stats()).toMatchObject({ delivered: 31, acked: 29, requeued: 1, rejected: 1 });
    const attempts = sinkRows(sink).filter((r) => r.id === 'm-7');
    expect(attempts.map((r) => [r.outcome, r.redelivered])).toEqual([
      ['failed', 0],
      ['failed', 1],
    ]);
    expect((await drainQueue(dlq)).map((d) => JSON.parse(d.body).id)).toEqual(['m-7']);
    expect((await depth(queue)).messageCount).toBe(0);
  });

  test('a poison message with the default options is handled once and rejected: it does not loop', async () => {
    const queue = uniqueName('queue', 'poison');
    const sink = tmpSink();
    const source = queueSource(queue);
    const pipeline = await start(source, sink, { runtime: 'threads', concurrency: 1 });
    await publish(queue, 50, { extra: (i) => (i === 1 ? { fail: true } : {}) });
    await waitFor(() => source.stats().acked === 49 && source.stats().rejected === 1, 'every message settled');
    // Give a loop the chance to show: nothing more may arrive.
    await waitFor(async () => (await depth(queue)).messageCount === 0, 'the queue empty');
    await pipeline.stop();
    expect(source.stats()).toMatchObject({ delivered: 50, acked: 49, rejected: 1, requeued: 0 });
    expect(sinkRows(sink).filter((r) => r.id === 'm-1')).toEqual([expect.objectContaining({ outcome: 'failed', redelivered: 0 })]);
  });

  test("Message.configureAck(m, { onFailure }) overrides the producer's default for that message only", async () => {
    const queue = uniqueName('queue', 'configure');
    const sink = tmpSink();
    const source = queueSource(queue); // default 'reject'
    const pipeline = await start(source, sink, { runtime: 'threads', concurrency: 1 });
    await publish(queue, 20, { extra: (i) => (i === 3 ? { fail: true, onFailure: 'requeue_once' } : i === 4 ? { fail: true } : {}) });
    await waitFor(() => source.stats().acked === 18 && source.stats().rejected === 2, 'every message settled');
    await pipeline.stop();
    expect(source.stats()).toMatchObject({ delivered: 21, requeued: 1, rejected: 2 });
    expect(sinkRows(sink).filter((r) => r.outcome === 'failed').map((r) => `${r.id}:${r.redelivered}`).sort()).toEqual(['m-3:0', 'm-3:1', 'm-4:0']);
  });

  test("payloads stay opaque: 'bytes' hands the handler a Uint8Array of its own, 'string' a string; metadata copies only what was asked", async () => {
    const queue = uniqueName('queue', 'payload');
    const sink = tmpSink();
    const source = rabbitmqQueue({ url: URL, queue, declare: { durable: false }, metadata: ['deliveryTag', 'redelivered', 'routingKey', 'messageId', 'headers', 'contentType'] });
    const producer = source(0);
    const pushed: unknown[] = [];
    await producer.init({ push: (events) => pushed.push(...events), pipelineName: 'payload-test', index: 0, hasTransformer: false });
    const ch = await (await adminConnection()).createChannel();
    ch.sendToQueue(queue, Buffer.from([0, 255, 1, 2]), { messageId: 'bin-1', contentType: 'application/octet-stream', headers: { 'x-tenant': 'acme' } });
    await ch.close();
    const first = producer.handleDemand(1);
    await waitFor(() => first.length + pushed.length === 1, 'one delivery');
    const m = (first[0] ?? pushed[0]) as { data: Uint8Array; metadata: Record<string, unknown> };
    expect(m.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(m.data)).toBe(false);
    expect([...m.data]).toEqual([0, 255, 1, 2]);
    // Its own memory, not a view into the socket's read buffer.
    expect(m.data.byteOffset).toBe(0);
    expect(m.data.buffer.byteLength).toBe(4);
    expect(m.metadata).toEqual({ deliveryTag: 1, redelivered: false, routingKey: queue, messageId: 'bin-1', headers: { 'x-tenant': 'acme' }, contentType: 'application/octet-stream' });
    await producer.terminate();
    // Through threads, with body 'string' and no metadata: the handler sees a string and {}.
    const stringSource = queueSource(queue, { metadata: [] });
    const pipeline = await start(stringSource, sink, { runtime: 'threads', concurrency: 1 });
    await publish(queue, 5);
    // The binary message, given back by the terminated producer, is not JSON: its handler throws.
    await waitFor(() => stringSource.stats().acked === 5 && stringSource.stats().rejected === 1, 'five acks and one reject');
    await pipeline.stop();
    const ok = sinkRows(sink).filter((r) => r.outcome === 'ok');
    expect(ok.map((r) => r.id).sort()).toEqual(['m-1', 'm-2', 'm-3', 'm-4', 'm-5']);
    expect(ok.every((r) => r.kind === 'string')).toBe(true);
  });
});

