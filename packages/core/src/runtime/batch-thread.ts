import { Worker, type ResourceLimits } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { ThroughwayError, type HandlerShape } from '@throughway/workers';
import { batchWorkerUrl, reviveError, type BatchOutput, type BatchThreadConfig, type BatchWorkerApi, type EncodedBatch } from '@throughway/workers/internal';

/**
 * One batcher slot's long-lived worker thread. If the thread dies, the batch it held is
 * rejected with a clear error and a new thread (with a fresh `setup`) serves the next batch.
 */
export class BatchThread {
  #config: BatchThreadConfig;
  #resourceLimits?: ResourceLimits;
  #worker?: Worker;
  #api?: Comlink.Remote<BatchWorkerApi>;
  #ready?: Promise<HandlerShape>;
  /** Rejecters of the calls in flight: a death rejects every one of them. */
  #inFlight = new Set<(error: Error) => void>();
  #closing = false;

  constructor(config: BatchThreadConfig, resourceLimits?: ResourceLimits) {
    this.#config = config;
    this.#resourceLimits = resourceLimits;
  }

  start(): Promise<HandlerShape> {
    if (this.#ready) return this.#ready;
    const worker = new Worker(batchWorkerUrl, { resourceLimits: this.#resourceLimits });
    const api = Comlink.wrap<BatchWorkerApi>(nodeEndpoint(worker));
    this.#worker = worker;
    this.#api = api;
    let lastError: Error | undefined;
    worker.on('error', (error) => (lastError = error));
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#api = undefined;
      this.#ready = undefined;
      if (this.#closing) return;
      const cause = lastError ? `${lastError.name}: ${lastError.message}` : `exit code ${code}`;
      const error = new ThroughwayError('ERR_THROUGHWAY_THREAD_DIED', `the batch worker thread of ${this.#config.batcher}[${this.#config.slot}] died (${cause})`);
      for (const reject of this.#inFlight) reject(error);
      this.#inFlight.clear();
    });
    this.#ready = this.#guard(api.init(this.#config)).then(({ shape, initError }) => {
      if (initError) throw reviveError(initError, 'ERR_THROUGHWAY_SETUP_FAILED');
      return shape!;
    });
    return this.#ready;
  }

  async run(batches: EncodedBatch[]): Promise<BatchOutput[]> {
    await this.start();
    const buffers = batches.map((b) => b.buffer.buffer as ArrayBuffer);
    return this.#guard(this.#api!.run(Comlink.transfer(batches, buffers)));
  }

  async stop(graceful: boolean): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    if (graceful && this.#api) {
      await Promise.race([this.#guard(this.#api.teardown()).catch(() => undefined), delay(5000)]);
    }
    this.#closing = true;
    this.#api?.[Comlink.releaseProxy]();
    await worker.terminate();
  }

  /** Races a call against the death of the thread, which comlink alone would never notice. */
  #guard<T>(call: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#inFlight.add(reject);
      call.then(resolve, reject).finally(() => this.#inFlight.delete(reject));
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
