// A real pipeline (processor threads, a batcher in its own thread) reading a JetStream consumer
// on the machine's NATS server.
import { afterEach, describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { natsJetStream } from '@throughway/nats-producer';
import { countsById, consumerState, FIXTURES, publishIds, SERVER, sinkRows, testStream, tmpSink, type TestStream } from './helpers.js';

let stream: TestStream | undefined;
afterEach(async () => {
  await stream?.delete();
  stream = undefined;
});

describe('natsJetStream through a pipeline', () => {
  test('100,000 messages through processor threads and a batcher: each handled and acked once, the consumer ends with nothing pending', async () => {
    stream = await testStream();
    const N = 100_000;
    await publishIds(stream, 1, N);
    const sink = tmpSink();
    const source = natsJetStream({ servers: SERVER, stream: stream.name, consumer: stream.consumer });
    const pipeline = await Pipeline.start({
      name: 'nats-100k',
      handlers: new URL('sink-handlers.mjs', `file://${FIXTURES}`),
      producer: { module: source },
      processors: { default: { concurrency: 1 } },
      batchers: { default: { batchSize: 100, batchTimeout: 100 } },
      context: { sink },
    });
    const deadline = Date.now() + 120_000;
    while (source.stats().acked < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const { unacked } = await pipeline.stop();
    expect(unacked).toBe(0);

    const stats = source.stats();
    expect(stats).toMatchObject({ received: N, acked: N, naked: 0, terminated: 0, errors: 0 });
    const counts = countsById(sink);
    expect(counts.size).toBe(N);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(sinkRows(sink).every((r) => r.delivery === 1)).toBe(true);
    expect(await consumerState(stream)).toMatchObject({ pending: 0, ackPending: 0, redelivered: 0, delivered: N, ackFloor: N });
  });

  test('stop() mid-run drains: pulling stops, what was emitted is finished and acked, what was not is given back; a second run takes the rest, each message once', async () => {
    stream = await testStream();
    const N = 2000;
    await publishIds(stream, 1, N);
    const sink = tmpSink();
    const start = async () => {
      const source = natsJetStream({ servers: SERVER, stream: stream!.name, consumer: stream!.consumer });
      const pipeline = await Pipeline.start({
        name: 'nats-drain',
        handlers: new URL('sink-handlers.mjs', `file://${FIXTURES}`),
        producer: { module: source },
        processors: { default: { concurrency: 1, maxDemand: 50 } },
        batchers: { default: { batchSize: 20, batchTimeout: 50 } },
        context: { sink, delayMs: 1 },
      });
      return { source, pipeline };
    };
    const first = await start();
    const deadline = Date.now() + 45_000;
    while (sinkRows(sink).length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const { unacked } = await first.pipeline.stop();
    expect(unacked).toBe(0);
    const done = sinkRows(sink).length;
    expect(done).toBeLessThan(N);
    const stats = first.source.stats();
    expect(stats.acked).toBe(done);
    expect(stats.received).toBe(stats.acked + stats.released);
    // Given back with a nak (no delay), they wait for redelivery and so still count as ack-pending.
    expect(await consumerState(stream)).toMatchObject({ ackPending: stats.released, ackFloor: done, pending: N - done - stats.released });

    const second = await start();
    const deadline2 = Date.now() + 60_000;
    while (second.source.stats().acked < N - done && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 50));
    await second.pipeline.stop();
    const counts = countsById(sink);
    expect(counts.size).toBe(N);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(await consumerState(stream)).toMatchObject({ pending: 0, ackPending: 0, ackFloor: N });
  });
});
