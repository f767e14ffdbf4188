import { Worker, type ResourceLimits } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { ThroughwayError, type HandlerShape } from '@throughway/workers';
import { batchWorkerUrl, reviveError, type BatchThreadConfig, type BatchWorkerApi, type EncodedBatch, type EncodedBatchOutput } from '@throughway/workers/internal';

/**
 * The rejection of a `run` whose thread died: `culprit` is the index (in that run) of the batch
 * that was running when it died, or -1 if none of the run's batches was running. Every other
 * batch of the run either had not started or finished without its output coming back.
 */
export class BatchThreadDeath extends ThroughwayError {
  readonly culprit: number;

  constructor(error: ThroughwayError, culprit: number) {
    super(error.code, error.message);
    this.culprit = culprit;
  }
}

interface Run {
  /** Position of the run's first batch among the batches sent to the current thread. */
  base: number;
  size: number;
  reject(error: Error): void;
}

/**
 * One batcher slot's long-lived worker thread. If the thread dies, a new thread (with a fresh
 * `setup`) serves the next batch, and each run in flight rejects with a `BatchThreadDeath`
 * naming the batch that was running, read from counters the thread keeps in shared memory.
 */
export class BatchThread {
  #config: BatchThreadConfig;
  #resourceLimits?: ResourceLimits;
  #onDeath: (error: ThroughwayError) => void;
  #worker?: Worker;
  #api?: Comlink.Remote<BatchWorkerApi>;
  #ready?: Promise<HandlerShape>;
  /** Rejecters of the calls in flight: a death rejects every one of them. */
  #inFlight = new Set<(error: Error) => void>();
  #runs = new Set<Run>();
  /** Batches sent to the current thread. */
  #sent = 0;
  #closing = false;

  constructor(config: BatchThreadConfig, resourceLimits: ResourceLimits | undefined, onDeath: (error: ThroughwayError) => void) {
    this.#config = config;
    this.#resourceLimits = resourceLimits;
    this.#onDeath = onDeath;
  }

  start(): Promise<HandlerShape> {
    if (this.#ready) return this.#ready;
    const worker = new Worker(batchWorkerUrl, { resourceLimits: this.#resourceLimits });
    const api = Comlink.wrap<BatchWorkerApi>(nodeEndpoint(worker));
    const progress = new Int32Array(new SharedArrayBuffer(8));
    this.#worker = worker;
    this.#api = api;
    this.#sent = 0;
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
      const started = Atomics.load(progress, 0);
      const running = started > Atomics.load(progress, 1) ? started - 1 : -1;
      const runs = [...this.#runs];
      const inFlight = [...this.#inFlight];
      this.#runs.clear();
      this.#inFlight.clear();
      this.#onDeath(error);
      // Answers the thread posted before it died were drained just before 'exit': let their
      // runs resolve first (a reject after that is a no-op).
      setImmediate(() => {
        for (const run of runs) run.reject(new BatchThreadDeath(error, running >= run.base && running < run.base + run.size ? running - run.base : -1));
        for (const reject of inFlight) reject(error);
      });
    });
    this.#ready = this.#guard(api.init({ ...this.#config, progress })).then(({ shape, initError }) => {
      if (initError) throw reviveError(initError, 'ERR_THROUGHWAY_SETUP_FAILED');
      return shape!;
    });
    return this.#ready;
  }

  async run(batches: EncodedBatch[]): Promise<EncodedBatchOutput[]> {
    await this.start();
    // The batches of a call are views of one buffer (concatBatches): moved once.
    const buffers = [...new Set(batches.map((b) => b.buffer.buffer as ArrayBuffer))];
    return new Promise<EncodedBatchOutput[]>((resolve, reject) => {
      const run: Run = { base: this.#sent, size: batches.length, reject };
      this.#sent += batches.length;
      this.#runs.add(run);
      this.#api!.run(Comlink.transfer(batches, buffers))
        .then(resolve, reject)
        .finally(() => this.#runs.delete(run));
    });
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
