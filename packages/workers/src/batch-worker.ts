/**
 * A batch worker: one long-lived thread per batcher slot, set up and torn down over comlink, fed
 * batches on a port of its own. It runs `setup` once (so it can hold a database connection for its
 * life) and then one batch at a time.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { runBatch } from './batch-runner.js';
import { shapeOf, type PipelineHandlers } from './define-pipeline.js';
import { initHandlers } from './load-handlers.js';
import { serializeError } from './errors.js';
import { decodeValues, encodeValues } from './payload-codec.js';
import type { BatchItem, ProcessedValue } from './runner-types.js';
import type { BatchPortAnswer, BatchPortRun, BatchThreadConfig, BatchWorkerApi, EncodedBatch, EncodedBatchOutput } from './thread-config.js';

let handlers: PipelineHandlers | undefined;
let context: unknown;
let progress: Int32Array | undefined;
// The coordinator sends batches ahead so that this thread never waits for a round trip; they
// still run one at a time, in the order sent, so a batch key is never handled concurrently.
let tail: Promise<unknown> = Promise.resolve();

const api: BatchWorkerApi = {
  async init(config: BatchThreadConfig) {
    progress = config.progress;
    // Batches may come as soon as init answers: the port listens first.
    config.port?.on('message', onRun);
    try {
      ({ handlers, context } = await initHandlers(config.handlers, config.context, { kind: 'batcher', batcher: config.batcher, slot: config.slot }));
    } catch (error) {
      return { initError: serializeError(error) };
    }
    return { shape: shapeOf(handlers) };
  },
  async teardown() {
    await tail;
    await handlers?.teardown?.(context);
  },
};

/** A run from the coordinator's port: its outputs go back on the same port, their buffers moved. */
function onRun(this: MessagePort, { id, batches }: BatchPortRun): void {
  const port = this;
  run(batches).then(
    ({ outputs, buffers }) => port.postMessage({ id, outputs } satisfies BatchPortAnswer, buffers),
    (error: unknown) => port.postMessage({ id, error: serializeError(error) } satisfies BatchPortAnswer),
  );
}

/** Runs the batches one after another, in order; one post carries many batches. */
function run(batches: EncodedBatch[]): Promise<{ outputs: EncodedBatchOutput[]; buffers: ArrayBuffer[] }> {
  const result = tail.then(async () => {
    const outputs: EncodedBatchOutput[] = [];
    const buffers: ArrayBuffer[] = [];
    for (const batch of batches) {
      if (progress) Atomics.add(progress, 0, 1);
      const out: EncodedBatchOutput & { values?: ProcessedValue[] } = await runEncoded(batch);
      if (progress) Atomics.add(progress, 1, 1);
      if (out.values) {
        const encoded = encodeValues(out.values);
        delete out.values;
        out.buffer = encoded.buffer;
        out.offsets = encoded.offsets;
        buffers.push(encoded.buffer.buffer as ArrayBuffer); // the offsets' too
      }
      outputs.push(out);
    }
    // Moved, not copied: the main thread decodes a value only where an acknowledger reads it.
    return { outputs, buffers };
  });
  tail = result.catch(() => undefined);
  return result;
}

function runEncoded(batch: EncodedBatch) {
  const values = decodeValues(batch);
  const items: BatchItem[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) items[i] = { data: values[i]![0], metadata: values[i]![1], batchMode: 'bulk' };
  if (batch.flush) for (const i of batch.flush) items[i]!.batchMode = 'flush';
  return runBatch(handlers!, context, { batcher: batch.batcher, info: batch.info, items, want: batch.want });
}

Comlink.expose(api, nodeEndpoint(parentPort!));
