// serveMetrics / createMetrics: /metrics scraped during real runs and parsed as Prometheus text,
// counters checked against stats() and the acks the source saw; /healthz, /readyz; the SQLite
// queue's gauges; a user's own registry; nothing left open after stop().
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { Registry } from 'prom-client';
import { DummyProducer, Pipeline, createMessage, fromIterable, type Acknowledger } from '@throughway/core';
import { deadLetters, enqueue, migrate, sqliteQueue } from '@throughway/sqlite-producer';
import { createMetrics, serveMetrics } from '@throughway/metrics';

const HANDLERS = new URL('./fixtures/handlers.ts', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'throughway-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
const unique = (prefix: string) => `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

const started: Pipeline[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop({ timeout: 5000 }).catch(() => undefined)));
});

// ---------------------------------------------------------------------------------------------
// A strict reader of the Prometheus text exposition format (version 0.0.4)

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sampleRe = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (comment) {
      if (comment[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(comment[3]);
        expect(types.has(comment[2]!), `TYPE of ${comment[2]} given twice`).toBe(false);
        types.set(comment[2]!, comment[3]!);
      }
      continue;
    }
    expect(line.startsWith('#'), `unknown comment line: ${line}`).toBe(false);
    const m = sampleRe.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    if (m![2]) {
      labelRe.lastIndex = 0;
      while (labelRe.lastIndex < m![2].length) {
        const l = labelRe.exec(m![2]);
        expect(l, `bad labels in: ${line}`).not.toBeNull();
        labels[l![1]!] = l![2]!;
      }
    }
    const value = m![3] === '+Inf' ? Infinity : m![3] === '-Inf' ? -Infinity : Number(m![3]);
    expect(Number.isNaN(value) && m![3] !== 'NaN', `bad value in: ${line}`).toBe(false);
    const family = [...types.keys()].find((t) => m![1] === t || (types.get(t) === 'histogram' && [`${t}_bucket`, `${t}_sum`, `${t}_count`].includes(m![1]!)));
    expect(family, `sample before its TYPE: ${line}`).toBeDefined();
    samples.push({ name: m![1]!, labels, value });
  }
  return { types, samples };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found.length, `${name}${JSON.stringify(labels)} matched ${found.length} samples`).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

async function scrape(url: string): Promise<{ types: Map<string, string>; samples: Sample[] }> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** An acknowledger that records what it was told. */
function recorder(): { module: Acknowledger; successful: number; failed: number } {
  const rec = {
    successful: 0,
    failed: 0,
    module: {
      ack(_ref: unknown, successful: unknown[], failed: unknown[]) {
        rec.successful += successful.length;
        rec.failed += failed.length;
      },
    } as Acknowledger,
  };
  return rec;
}

describe('serveMetrics', () => {
  test('during a run /metrics parses as Prometheus text; once all is acked its counters equal stats() and the acks seen', async () => {
    const rec = recorder();
    const total = 1500;
    const events = Array.from({ length: total }, (_, i) => ({ id: i, fail: i % 25 === 0, batcher: i % 2 === 0 ? 'even' : 'default' }));
    // Kept open after its last event: fromIterable reports itself exhausted, and the pipeline
    // would then stop on its own (pipeline.done) before the final scrape.
    const source = fromIterable(events);
    const pipeline = await Pipeline.start({
      name: unique('metrics'),
      handlers: HANDLERS,
      producer: {
        module: { ...source, init: (controller) => source.init!({ ...controller, exhausted: undefined }) },
        transformer: (e) => createMessage(e, { acknowledger: { module: rec.module, ref: 'r' } }),
        rateLimiting: { allowedMessages: 100, interval: 100 },
      },
      processors: { default: { concurrency: 1, runtime: 'threads' } },
      batchers: { default: { batchSize: 50, batchTimeout: 50 }, even: { batchSize: 20, batchTimeout: 50 } },
    });
    started.push(pipeline);
    const server = await serveMetrics(pipeline, { port: 0 });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);

    // Scrapes while the run goes on: every one parses, and the counters never go down.
    const during = await scrape(server.url);
    expect(during.types.get('throughway_messages_acked_total')).toBe('counter');
    expect(during.types.get('throughway_processor_duration_seconds')).toBe('histogram');
    expect(during.types.get('throughway_messages_in_flight')).toBe('gauge');
    expect(value(during.samples, 'throughway_messages_acked_total', { pipeline: pipeline.name })!).toBeLessThan(total);
    expect(value(during.samples, 'throughway_pipeline_running', { pipeline: pipeline.name })).toBe(1);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    let last = -1;
    await waitFor(async () => {
      const { samples } = await scrape(server.url);
      const acked = value(samples, 'throughway_messages_acked_total', { pipeline: pipeline.name })!;
      expect(acked).toBeGreaterThanOrEqual(last);
      last = acked;
      return rec.successful + rec.failed === total;
    }, 'every message acked');

    const { samples, types } = await scrape(server.url);
    const s = pipeline.stats();
    const p = { pipeline: pipeline.name };
    expect(rec).toMatchObject({ successful: total - 60, failed: 60 });
    expect(value(samples, 'throughway_messages_in_total', p)).toBe(total);
    expect(value(samples, 'throughway_messages_acked_total', p)).toBe(s.acks.successful);
    expect(value(samples, 'throughway_messages_acked_total', p)).toBe(rec.successful);
    expect(value(samples, 'throughway_messages_failed_total', p)).toBe(rec.failed);
    expect(value(samples, 'throughway_messages_in_flight', p)).toBe(0);
    expect(value(samples, 'throughway_thread_deaths_total', p)).toBe(0);
    expect(value(samples, 'throughway_processor_duration_seconds_count', { ...p, stage: 'default' })).toBe(s.processors.calls);
    expect(value(samples, 'throughway_processor_duration_seconds_bucket', { ...p, stage: 'default', le: '+Inf' })).toBe(s.processors.calls);
    for (const batcher of ['default', 'even']) {
      expect(value(samples, 'throughway_batch_size_messages_sum', { ...p, batcher })).toBe(s.batchers[batcher]!.messages);
      expect(value(samples, 'throughway_batch_size_messages_count', { ...p, batcher })).toBe(s.batchers[batcher]!.batches);
      expect(value(samples, 'throughway_batch_duration_seconds_count', { ...p, batcher })).toBe(s.batchers[batcher]!.batches);
      expect(value(samples, 'throughway_batcher_pending_messages', { ...p, batcher })).toBe(0);
      const load = value(samples, 'throughway_stage_load_ratio', { ...p, stage: 'batcher', batcher })!;
      expect(load).toBeGreaterThanOrEqual(0);
      expect(load).toBeLessThanOrEqual(1);
    }
    expect(s.batchers.even!.messages + s.batchers.default!.messages).toBe(total - 60);
    expect(value(samples, 'throughway_rate_limit_allowed_messages', p)).toBe(100);
    expect(value(samples, 'throughway_rate_limit_interval_seconds', p)).toBe(0.1);
    // The producer still asks (and finds the limit used up) after its last event: the scrape came first.
    expect(value(samples, 'throughway_rate_limiter_throttled_total', p)).toBeGreaterThan(0);
    expect(value(samples, 'throughway_rate_limiter_throttled_total', p)).toBeLessThanOrEqual(s.rateLimiting!.throttled);
    // Conventions: throughway_ prefix; counters end in _total; no per-message label.
    for (const [name, type] of types) {
      expect(name).toMatch(/^throughway_[a-z_]+$/);
      if (type === 'counter') expect(name).toMatch(/_total$/);
    }
    const labelNames = new Set(samples.flatMap((x) => Object.keys(x.labels)));
    expect([...labelNames].sort()).toEqual(['batcher', 'le', 'pipeline', 'stage']);

    expect(await (await fetch(`${server.url}/healthz`)).text()).toBe('ok\n');
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    await pipeline.stop();
    // The server closes by itself with the pipeline, and leaves no listening socket.
    await waitFor(() => !process.getActiveResourcesInfo().includes('TCPServerWrap'), 'the server to close');
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  test('/readyz answers 503 while the pipeline drains', async () => {
    const rec = recorder();
    const producer = new DummyProducer();
    const pipeline = await Pipeline.start({ name: unique('ready'), handlers: HANDLERS, producer: { module: producer }, processors: { default: { concurrency: 1, runtime: 'inline' } }, batchers: { default: {} } });
    started.push(pipeline);
    const server = await serveMetrics(pipeline, { port: 0 });
    pipeline.push([createMessage({ sleepMs: 2000 }, { acknowledger: { module: rec.module, ref: 'r' } })]);
    const stopped = pipeline.stop();
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('draining\n');
    const { samples } = await scrape(server.url);
    expect(value(samples, 'throughway_pipeline_running', { pipeline: pipeline.name })).toBe(0);
    await stopped;
    expect(rec.successful).toBe(1);
  });

  test('rejects bad options before listening, naming the option', async () => {
    const pipeline = await Pipeline.start({ name: unique('bad'), handlers: HANDLERS, producer: { module: new DummyProducer() }, processors: { default: { concurrency: 1, runtime: 'inline' } } });
    started.push(pipeline);
    await expect(serveMetrics(pipeline, { port: 70000 })).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`serveMetrics.port`') });
    await expect(serveMetrics(pipeline, { port: 0, sources: { q: {} as never } })).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`metrics.sources.q`') });
    await expect(serveMetrics(pipeline, { prot: 1 } as never)).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`serveMetrics.prot`') });
  });
});

describe('source gauges', () => {
  test("the SQLite queue's ready, delayed, leased and dead-lettered rows, read at each scrape", async () => {
    const file = join(dir, `${unique('queue')}.db`);
    migrate(file);
    enqueue(file, [...Array.from({ length: 40 }, (_, i) => `ok:${i}`), ...Array.from({ length: 6 }, (_, i) => `fail:${i}`)]);
    enqueue(file, [{ payload: 'ok:later', availableAt: Date.now() + 3_600_000 }]);
    const queue = sqliteQueue({ database: file, maxAttempts: 1, pollInterval: 10 });
    const pipeline = await Pipeline.start({ name: unique('sqlite'), handlers: HANDLERS, producer: { module: queue }, processors: { default: { concurrency: 1, runtime: 'inline' } }, batchers: { default: { batchSize: 10, batchTimeout: 20 } } });
    started.push(pipeline);
    const server = await serveMetrics(pipeline, { port: 0, sources: { queue } });
    await waitFor(() => queue.stats().acked + queue.stats().deadLettered === 46, 'the ready rows done');
    const { samples } = await scrape(server.url);
    const q = (state: string) => value(samples, 'throughway_source_messages', { pipeline: pipeline.name, source: 'queue', state });
    expect(deadLetters(file)).toHaveLength(6);
    expect({ ready: q('ready'), delayed: q('delayed'), leased: q('leased'), done: q('done'), dead_lettered: q('dead_lettered') }).toEqual({ ready: 0, delayed: 1, leased: 0, done: 0, dead_lettered: 6 });
    expect(value(samples, 'throughway_messages_failed_total', { pipeline: pipeline.name })).toBe(6);
  });
});

describe('createMetrics with your own registry', () => {
  test('registers into it, refuses a second pipeline in the same registry, and unregisters on close()', async () => {
    const registry = new Registry();
    const rec = recorder();
    const pipeline = await Pipeline.start({ name: unique('own'), handlers: HANDLERS, producer: { module: new DummyProducer() }, processors: { default: { concurrency: 1, runtime: 'inline' } } });
    started.push(pipeline);
    const metrics = createMetrics(pipeline, { registry });
    await pipeline.testBatch([{ id: 1 }, { id: 2, fail: true }]).then(() => undefined);
    pipeline.push([createMessage({ id: 3 }, { acknowledger: { module: rec.module, ref: 'r' } })]);
    await waitFor(() => rec.successful === 1, 'the pushed message acked');
    const { samples } = parseExposition(await registry.metrics());
    expect(value(samples, 'throughway_messages_acked_total', { pipeline: pipeline.name })).toBe(2);
    expect(value(samples, 'throughway_messages_failed_total', { pipeline: pipeline.name })).toBe(1);
    expect(() => createMetrics(pipeline, { registry })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_ARGUMENT' }));
    metrics.close();
    expect((await registry.metrics()).trim()).toBe('');
    expect(registry.getMetricsAsArray()).toHaveLength(0);
  });
});
