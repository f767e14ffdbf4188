import { MessageChannel, Worker, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { ThroughwayError, type HandlerShape } from '@throughway/workers';
import { batchWorkerUrl, reviveError, reviveThrown, type BatchPortAnswer, type BatchPortRun, type BatchThreadConfig, type BatchWorkerApi, type EncodedBatch, type EncodedBatchOutput } from '@throughway/workers/internal';
import { boundedTeardown, type TeardownFailure } from './runtime.js';

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
  resolve(outputs: EncodedBatchOutput[]): void;
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
  /** Runs posted on the current thread's port, by id, until their answer comes. */
  #runs = new Map<number, Run>();
  #nextRun = 0;
  #port?: MessagePort;
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
    // Batches go on a port of their own (see BatchThreadConfig.port); comlink carries init and teardown.
    const { port1: port, port2 } = new MessageChannel();
    // This thread's runs: answers it posted before dying still find theirs after 'exit' (below).
    const runs = new Map<number, Run>();
    port.on('message', ({ id, outputs, error }: BatchPortAnswer) => {
      const run = runs.get(id);
      if (!run) return;
      runs.delete(id);
      if (error) run.reject(reviveThrown(error));
      else run.resolve(outputs!);
    });
    // The worker itself keeps the process alive while the pipeline runs; `stop` ends both.
    port.unref();
    this.#worker = worker;
    this.#api = api;
    this.#port = port;
    this.#runs = runs;
    this.#sent = 0;
    let lastError: Error | undefined;
    worker.on('error', (error) => (lastError = error));
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#api = undefined;
      this.#ready = undefined;
      this.#port = undefined;
      if (this.#closing) {
        port.close();
        return;
      }
      const cause = lastError ? `${lastError.name}: ${lastError.message}` : `exit code ${code}`;
      const error = new ThroughwayError('ERR_THROUGHWAY_THREAD_DIED', `the batch worker thread of ${this.#config.batcher}[${this.#config.slot}] died (${cause})`);
      const started = Atomics.load(progress, 0);
      const running = started > Atomics.load(progress, 1) ? started - 1 : -1;
      const inFlight = [...this.#inFlight];
      this.#runs = new Map();
      this.#inFlight.clear();
      this.#onDeath(error);
      // Answers the thread posted before it died may still be on their way: let their runs resolve
      // first; the rest are rejected.
      setImmediate(() => {
        port.close();
        for (const run of runs.values()) run.reject(new BatchThreadDeath(error, running >= run.base && running < run.base + run.size ? running - run.base : -1));
        for (const reject of inFlight) reject(error);
      });
    });
    this.#ready = this.#guard(api.init(Comlink.transfer({ ...this.#config, progress, port: port2 }, [port2]))).then(({ shape, initError }) => {
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
      const id = this.#nextRun++;
      this.#port!.postMessage({ id, batches } satisfies BatchPortRun, buffers);
      this.#runs.set(id, { base: this.#sent, size: batches.length, resolve, reject });
      this.#sent += batches.length;
    });
  }

  /** Ends the thread, after its `teardown` when `graceful`; resolves with that teardown's failure, if any. */
  async stop(graceful: boolean): Promise<TeardownFailure | undefined> {
    const worker = this.#worker;
    if (!worker) return undefined;
    const api = this.#api;
    const where = `batcher ${JSON.stringify(this.#config.batcher)} slot ${this.#config.slot} (thread ${worker.threadId})`;
    const failure = graceful && api ? await boundedTeardown(where, () => this.#guard(api.teardown())) : undefined;
    this.#closing = true;
    this.#port?.close();
    this.#api?.[Comlink.releaseProxy]();
    await worker.terminate();
    return failure;
  }

  /** Races a call against the death of the thread, which comlink alone would never notice. */
  #guard<T>(call: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#inFlight.add(reject);
      call.then(resolve, reject).finally(() => this.#inFlight.delete(reject));
    });
  }
}
