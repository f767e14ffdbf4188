// Option validation (issue 2: options are validated as a whole before anything starts; errors are
// ThroughwayErrors with a stable code that name the option path and the value received).
import { describe, expect, test } from 'vitest';
import { DummyProducer, ThroughwayError } from '@throughway/core';
import { RUNTIMES, SCRIPTED, uniqueName, useHarness } from './helpers.js';

describe.each(RUNTIMES)('option validation [%s]', (runtime) => {
  const h = useHarness(runtime);

  function spyProducer() {
    const calls: string[] = [];
    const producer = {
      init() {
        calls.push('init');
      },
      handleDemand() {
        calls.push('handleDemand');
        return [];
      },
    };
    return { calls, producer };
  }

  function valid(producer: unknown): any {
    return {
      name: uniqueName('opts'),
      handlers: SCRIPTED,
      producer: { module: producer },
      processors: { default: { concurrency: 1, maxDemand: 10, runtime } },
    };
  }

  async function rejection(options: any): Promise<any> {
    try {
      await h.start(options);
    } catch (err) {
      return err;
    }
    throw new Error('Pipeline.start accepted invalid options');
  }

  const cases: [string, (o: any) => void, string[]][] = [
    ['an unknown top-level key', (o) => (o.bogus = 1), ['bogus']],
    ['an unknown processor key', (o) => (o.processors.default.maxDemnd = 5), ['processors.default.maxDemnd']],
    ['an unknown batcher key', (o) => (o.batchers = { sink: { batchsize: 5 } }), ['batchers.sink.batchsize']],
    ['an unknown producer key', (o) => (o.producer.concurency = 2), ['producer.concurency']],
    ['a wrongly typed concurrency', (o) => (o.processors.default.concurrency = 'two'), ['processors.default.concurrency', 'two']],
    ['a zero batchSize', (o) => (o.batchers = { sink: { batchSize: 0 } }), ['batchers.sink.batchSize', '0']],
    ['a wrongly typed batchTimeout', (o) => (o.batchers = { sink: { batchTimeout: 'soon' } }), ['batchers.sink.batchTimeout', 'soon']],
    ['minDemand not below maxDemand', (o) => Object.assign(o.processors.default, { maxDemand: 5, minDemand: 5 }), ['minDemand']],
    ['an unknown runtime', (o) => (o.processors.default.runtime = 'fibers'), ['processors.default.runtime', 'fibers']],
    ['a processor group other than default', (o) => (o.processors.other = { concurrency: 1 }), ['processors.other']],
    ['rateLimiting without interval', (o) => (o.producer.rateLimiting = { allowedMessages: 5 }), ['producer.rateLimiting.interval']],
    ['a negative allowedMessages', (o) => (o.producer.rateLimiting = { allowedMessages: -3, interval: 100 }), ['producer.rateLimiting.allowedMessages', '-3']],
    ['a missing name', (o) => delete o.name, ['name']],
    ['a missing handlers', (o) => delete o.handlers, ['handlers']],
    ['a non-function transformer', (o) => (o.producer.transformer = 'upper'), ['producer.transformer']],
    ['a wrongly typed shutdownTimeout', (o) => (o.shutdownTimeout = '30s'), ['shutdownTimeout', '30s']],
    ['a producer without handleDemand', (o) => (o.producer.module = {}), ['producer.module']],
  ];

  test.each(cases)('rejects %s, naming the option, before anything starts', async (_label, mutate, mentions) => {
    const { calls, producer } = spyProducer();
    const options = valid(producer);
    mutate(options);
    const err = await rejection(options);
    expect(err).toBeInstanceOf(ThroughwayError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('ERR_THROUGHWAY_INVALID_OPTION');
    for (const m of mentions) expect(err.message).toContain(m);
    expect(calls).toEqual([]);
  });

  test('a producer object with concurrency > 1 is rejected (a factory is required)', async () => {
    const { calls, producer } = spyProducer();
    const options = valid(producer);
    options.producer.concurrency = 2;
    const err = await rejection(options);
    expect(err).toBeInstanceOf(ThroughwayError);
    expect(err.message).toContain('producer');
    expect(calls).toEqual([]);
  });

  test('a factory producer is not called when the options are invalid', async () => {
    let created = 0;
    const options = valid((i: number) => {
      created += 1;
      void i;
      return new DummyProducer();
    });
    options.producer.concurrency = 2;
    options.processors.default.concurrency = -1;
    const err = await rejection(options);
    expect(err).toBeInstanceOf(ThroughwayError);
    expect(err.message).toContain('processors.default.concurrency');
    expect(created).toBe(0);
  });

  test('a handler module that does not exist is a ThroughwayError and nothing starts', async () => {
    const { calls, producer } = spyProducer();
    const options = valid(producer);
    options.handlers = new URL('./fixtures/does-not-exist.ts', import.meta.url);
    const err = await rejection(options);
    expect(err).toBeInstanceOf(ThroughwayError);
    expect(err.code).toMatch(/^ERR_THROUGHWAY_[A-Z_]+$/);
    expect(calls.filter((c) => c === 'handleDemand')).toEqual([]);
  });

  test('valid options with defaults start, and the handlers path may be a string', async () => {
    const { producer } = spyProducer();
    const options = valid(producer);
    options.handlers = SCRIPTED.pathname;
    options.batchers = { sink: {} };
    const p = await h.start(options);
    expect(p.topology().batchers).toEqual([expect.objectContaining({ name: 'sink', concurrency: 1, batchSize: 100, batchTimeout: 1000 })]);
  });
});
