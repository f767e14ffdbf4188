// Option checking (coded errors naming the path, before anything connects), the prefetch derived
// from the pipeline's topology, and the reconnect backoff's bounds.
import { describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { Backoff, FALLBACK_PREFETCH, derivePrefetch, rabbitmqQueue } from '@throughway/rabbitmq-producer';
import { URL, tmpSink, uniqueName } from './helpers.js';

describe('options', () => {
  test.each([
    [{ queue: 'q' }, 'rabbitmqQueue.url'],
    [{ url: 'http://127.0.0.1', queue: 'q' }, 'rabbitmqQueue.url'],
    [{ url: [URL, 5], queue: 'q' }, 'rabbitmqQueue.url[1]'],
    [{ url: URL, queue: '' }, 'rabbitmqQueue.queue'],
    [{ url: URL, queue: 'x'.repeat(256) }, 'rabbitmqQueue.queue'],
    [{ url: URL, queue: 'q', prefetch: 0 }, 'rabbitmqQueue.prefetch'],
    [{ url: URL, queue: 'q', prefetch: 65_536 }, 'rabbitmqQueue.prefetch'],
    [{ url: URL, queue: 'q', onFailure: 'retry' }, 'rabbitmqQueue.onFailure'],
    [{ url: URL, queue: 'q', onSuccess: 'reject' }, 'rabbitmqQueue.onSuccess'],
    [{ url: URL, queue: 'q', metadata: ['deliveryTag', 'nope'] }, 'rabbitmqQueue.metadata[1]'],
    [{ url: URL, queue: 'q', body: 'json' }, 'rabbitmqQueue.body'],
    [{ url: URL, queue: 'q', backoff: { minMs: 5000, maxMs: 1000 } }, 'rabbitmqQueue.backoff.maxMs'],
    [{ url: URL, queue: 'q', backoff: { type: 'linear' } }, 'rabbitmqQueue.backoff.type'],
    [{ url: URL, queue: 'q', backoff: { minMs: -1 } }, 'rabbitmqQueue.backoff.minMs'],
    [{ url: URL, queue: 'q', declare: { durable: 'yes' } }, 'rabbitmqQueue.declare.durable'],
    [{ url: URL, queue: 'q', declare: { x: 1 } }, 'rabbitmqQueue.declare.x'],
    [{ url: URL, queue: 'q', bindings: [{ routingKey: 'k' }] }, 'rabbitmqQueue.bindings[0].exchange'],
    [{ url: URL, queue: 'q', heartbeat: 4000 }, 'rabbitmqQueue.heartbeat'],
    [{ url: URL, queue: 'q', qos: 10 }, 'rabbitmqQueue.qos'],
  ])('%j is refused naming %s, before anything connects', (options, path) => {
    let error: unknown;
    try {
      rabbitmqQueue(options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', details: { path } });
    expect((error as Error).message).toContain(path);
  });
});

describe('prefetch', () => {
  const topology = (processors: { concurrency: number; maxDemand: number; runtime: 'inline' | 'threads' }, batchers: { concurrency: number; batchSize: number }[]) => ({
    producers: [{ name: 'default', concurrency: 1 }],
    processors: [{ name: 'default', minDemand: 0, ...processors }],
    batchers: batchers.map((b, i) => ({ name: `b${i}`, batchTimeout: 1000, ...b })),
  });

  test("the default covers every processor's demand and every batcher's room, at least 50, at most 65535", () => {
    expect(derivePrefetch(topology({ concurrency: 2, maxDemand: 10, runtime: 'inline' }, []))).toBe(FALLBACK_PREFETCH);
    expect(derivePrefetch(topology({ concurrency: 4, maxDemand: 10, runtime: 'inline' }, [{ concurrency: 1, batchSize: 100 }]))).toBe(40 + 100 + 200);
    expect(derivePrefetch(topology({ concurrency: 1, maxDemand: 200, runtime: 'threads' }, [{ concurrency: 2, batchSize: 100 }]))).toBe(400 + 100 + 400);
    expect(derivePrefetch(topology({ concurrency: 8, maxDemand: 5000, runtime: 'threads' }, []))).toBe(65_535);
    expect(derivePrefetch(undefined)).toBe(FALLBACK_PREFETCH);
  });

  test("a producer in a pipeline takes its prefetch from that pipeline's topology unless one is given", async () => {
    const queue = uniqueName('queue', 'prefetch');
    const handlers = new globalThis.URL('./fixtures/sink-handlers.mjs', import.meta.url);
    const derived = rabbitmqQueue({ url: URL, queue, declare: { durable: false } });
    const given = rabbitmqQueue({ url: URL, queue, declare: { durable: false }, prefetch: 7 });
    for (const source of [derived, given]) {
      const pipeline = await Pipeline.start({
        name: `prefetch-${Math.random().toString(36).slice(2, 8)}`,
        handlers,
        producer: { module: source },
        processors: { default: { runtime: 'inline', concurrency: 3, maxDemand: 20 } },
        batchers: { default: { batchSize: 50 } },
        context: { sink: tmpSink() },
      });
      await pipeline.stop();
    }
    expect(derived.producers[0]!.prefetch).toBe(3 * 20 + 50 + 100);
    expect(given.producers[0]!.prefetch).toBe(7);
  });
});

describe('backoff', () => {
  test("'rand_exp' starts at minMs, grows with jitter, never passes maxMs, and starts over after reset", () => {
    const b = new Backoff({ minMs: 100, maxMs: 2000, type: 'rand_exp' });
    const delays = Array.from({ length: 200 }, () => b.next());
    expect(delays[0]).toBe(100);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2000);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(100);
    // Jittered: not all the same once it has grown.
    expect(new Set(delays.slice(10)).size).toBeGreaterThan(1);
    b.reset();
    expect(b.next()).toBe(100);
  });

  test("'exp' doubles up to the cap; 'rand' stays within [minMs, maxMs]", () => {
    const exp = new Backoff({ minMs: 100, maxMs: 1000, type: 'exp' });
    expect(Array.from({ length: 6 }, () => exp.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    const rand = new Backoff({ minMs: 10, maxMs: 20, type: 'rand' });
    for (let i = 0; i < 100; i++) expect(rand.next()).toBeGreaterThanOrEqual(10);
    for (let i = 0; i < 100; i++) expect(rand.next()).toBeLessThanOrEqual(20);
  });
});
