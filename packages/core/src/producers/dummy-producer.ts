import type { Producer } from '../producer.js';

/**
 * A producer that produces nothing: for pipelines fed by `push`, `testMessage` and `testBatch`.
 *
 * @example
 * const pipeline = await Pipeline.start({ ..., producer: { module: new DummyProducer() } })
 * const { successful } = await pipeline.testMessage({ id: 1 })
 */
export class DummyProducer implements Producer<never> {
  handleDemand(): never[] {
    return [];
  }
}
