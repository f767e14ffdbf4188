// The README's "Testing a pipeline" example, run as written on both runtimes: a pipeline is
// unit-tested with testMessage/testBatch on its processed data, as in Broadway's testing guide.
import { describe, expect, test } from 'vitest';
import { DummyProducer, Pipeline } from '@throughway/core';
import { RUNTIMES, uniqueName } from './helpers.js';

describe.each(RUNTIMES)('testing guide [%s]', (runtime) => {
  test('an order is priced and stored', async () => {
    const pipeline = await Pipeline.start({
      name: uniqueName('orders-test'),
      handlers: new URL('./fixtures/orders.ts', import.meta.url),
      producer: { module: new DummyProducer() },
      processors: { default: { runtime } },
      batchers: { default: { batchSize: 10 } },
    });
    try {
      const { successful, failed } = await pipeline.testMessage('{"sku":"A1","qty":2,"price":5}');
      expect(failed).toEqual([]);
      expect(successful[0]!.data).toEqual({ sku: 'A1', qty: 2, price: 5, total: 10, stored: true });
      expect(successful[0]!.batchKey).toBe('A1');

      const rejected = await pipeline.testBatch(['{"qty":1}']);
      expect(rejected.failed[0]!.status).toEqual({ kind: 'failed', reason: 'missing sku' });
    } finally {
      await pipeline.stop();
    }
  });
});
