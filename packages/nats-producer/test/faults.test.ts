// A fault of the producer's own connection mid-run: a TCP proxy between it and the server is cut
// and refuses connections for a while, then lets them through again.
import { afterEach, describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { natsJetStream } from '@throughway/nats-producer';
import { consumerState, countsById, FIXTURES, publishIds, SERVER, sinkDistinct, sleep, testStream, tmpSink, waitFor, type TestStream } from './helpers.js';
import { TcpProxy } from './tcp-proxy.js';

let stream: TestStream | undefined;
let proxy: TcpProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await stream?.delete();
  stream = undefined;
});

describe('connection faults', () => {
  test('the connection is cut mid-run: the producer reconnects, the pipeline finishes, nothing is lost', async () => {
    stream = await testStream({ ack_wait: 2_000_000_000 });
    const N = 3000;
    await publishIds(stream, 1, N);
    const [host, port] = SERVER.split(':');
    proxy = await TcpProxy.start({ host: host!, port: Number(port) });
    const sink = tmpSink();
    const errors: { code?: string; message: string }[] = [];
    const source = natsJetStream({ servers: proxy.address, stream: stream.name, consumer: stream.consumer, backoff: { minMs: 100, maxMs: 500 }, onError: (e) => errors.push(e as { code?: string; message: string }) });
    const pipeline = await Pipeline.start({
      name: 'nats-fault',
      handlers: new URL('sink-handlers.mjs', `file://${FIXTURES}`),
      producer: { module: source },
      processors: { default: { concurrency: 1, maxDemand: 20 } },
      batchers: { default: { batchSize: 20, batchTimeout: 50 } },
      context: { sink, delayMs: 1 },
    });
    try {
      await waitFor(() => sinkDistinct(sink) >= N / 5, `${N / 5} messages processed before the cut`, 45_000);
      proxy.cut();
      await waitFor(() => errors.some((e) => e.code === 'ERR_THROUGHWAY_NATS_DISCONNECTED'), 'the producer noticed the cut');
      await sleep(800); // reconnect attempts are refused meanwhile
      expect(sinkDistinct(sink)).toBeLessThan(N);
      proxy.restore();
      await waitFor(() => source.stats().reconnects >= 1, 'a reconnect');
      await waitFor(async () => {
        const s = await consumerState(stream!);
        return s.ackFloor >= N && s.pending === 0 && s.ackPending === 0;
      }, 'every message acked', 60_000);
    } finally {
      await pipeline.stop();
    }
    const counts = countsById(sink);
    for (let id = 1; id <= N; id++) expect(counts.get(id), `message ${id} processed`).toBeGreaterThanOrEqual(1);
    expect(proxy.connections).toBeGreaterThanOrEqual(2);
    expect(source.stats().reconnects).toBeGreaterThanOrEqual(1);
    // Reported once per outage, not once per message or per attempt.
    expect(errors.filter((e) => e.code === 'ERR_THROUGHWAY_NATS_DISCONNECTED')).toHaveLength(source.stats().reconnects);
  });
});
