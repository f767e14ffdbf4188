/**
 * A batch worker: one long-lived thread per batcher slot, driven over comlink. It runs `setup`
 * once (so it can hold a database connection for its life) and then one batch at a time.
 */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { runBatch } from './batch-runner.js';
import { shapeOf, type PipelineHandlers } from './define-pipeline.js';
import { initHandlers } from './load-handlers.js';
import { serializeError } from './errors.js';
import { decodeValues } from './payload-codec.js';
import type { BatchItem } from './runner-types.js';
import type { BatchThreadConfig, BatchWorkerApi, EncodedBatch } from './thread-config.js';

let handlers: PipelineHandlers | undefined;
let context: unknown;
let progress: Int32Array | undefined;
// The coordinator sends batches ahead so that this thread never waits for a round trip; they
// still run one at a time, in the order sent, so a batch key is never handled concurrently.
let tail: Promise<unknown> = Promise.resolve();

const api: BatchWorkerApi = {
  async init(config: BatchThreadConfig) {
    progress = config.progress;
    try {
      ({ handlers, context } = await initHandlers(config.handlers, config.context, { kind: 'batcher', batcher: config.batcher, slot: config.slot }));
    } catch (error) {
      return { initError: serializeError(error) };
    }
    return { shape: shapeOf(handlers) };
  },
  run(batches: EncodedBatch[]) {
    const result = tail.then(async () => {
      const outputs = [];
      for (const batch of batches) {
        if (progress) Atomics.add(progress, 0, 1);
        outputs.push(await runEncoded(batch));
        if (progress) Atomics.add(progress, 1, 1);
      }
      return outputs;
    });
    tail = result.catch(() => undefined);
    return result;
  },
  async teardown() {
    await tail;
    await handlers?.teardown?.(context);
  },
};

function runEncoded(batch: EncodedBatch) {
  const values = decodeValues(batch);
  const items: BatchItem[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) items[i] = { data: values[i]![0], metadata: values[i]![1], batchMode: 'bulk' };
  if (batch.flush) for (const i of batch.flush) items[i]!.batchMode = 'flush';
  return runBatch(handlers!, context, { batcher: batch.batcher, info: batch.info, items });
}

Comlink.expose(api, nodeEndpoint(parentPort!));
