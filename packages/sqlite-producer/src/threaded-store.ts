import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { ThroughwayError } from '@throughway/workers';
import { reviveThrown } from '@throughway/workers/internal';
import type { AckCounts, ClaimedRow, Failure, QueueStoreLike, StoreConfig } from './queue-store.js';
import type { Outcome, StoreThreadApi } from './store-thread.js';

const entry = new URL('./store-thread.js', import.meta.url);

/**
 * The main thread's handle on a store thread (see store-thread.ts): the same calls as QueueStore,
 * answered with promises. The thread handles calls one at a time, in order, so a claim never
 * overlaps an ack on the connection. If the thread dies, every pending and later call rejects
 * with `ERR_THROUGHWAY_SQLITE_STORE_THREAD`; the rows it had leased come back when their leases
 * expire.
 */
export class ThreadedQueueStore implements QueueStoreLike {
  readonly leasedBy: string;
  deadAtClaim = 0;
  #worker: Worker;
  #api: Comlink.Remote<StoreThreadApi>;
  /** Rejecters of the calls in flight: a death rejects every one of them. */
  #inFlight = new Set<(error: Error) => void>();
  #dead: ThroughwayError | undefined;
  #closing = false;

  private constructor(worker: Worker, leasedBy: string) {
    this.#worker = worker;
    this.#api = Comlink.wrap<StoreThreadApi>(nodeEndpoint(worker));
    this.leasedBy = leasedBy;
    let lastError: Error | undefined;
    worker.on('error', (error) => (lastError = error));
    worker.once('exit', (code) => {
      const cause = lastError ? `${lastError.name}: ${lastError.message}` : `exit code ${code}`;
      this.#dead = new ThroughwayError('ERR_THROUGHWAY_SQLITE_STORE_THREAD', this.#closing ? 'the sqlite queue store thread was closed' : `the sqlite queue store thread died (${cause})`, {
        ...(lastError ? { cause: lastError } : {}),
      });
      const inFlight = [...this.#inFlight];
      this.#inFlight.clear();
      // Answers the thread posted before it died were drained just before 'exit': let their
      // calls resolve first (a reject after that is a no-op).
      setImmediate(() => {
        for (const reject of inFlight) reject(this.#dead!);
      });
    });
  }

  /** Starts the thread and waits until it has opened (and migrated) the database. */
  static async start(config: StoreConfig, leasedBy: string): Promise<ThreadedQueueStore> {
    const store = new ThreadedQueueStore(new Worker(entry), leasedBy);
    try {
      await store.#call(store.#api.open(config, leasedBy));
    } catch (error) {
      await store.#end();
      throw error;
    }
    return store;
  }

  /**
   * A call's result, or its error revived with its code. Raced against the death of the thread,
   * which comlink alone would never notice.
   */
  async #call<T>(call: Promise<Outcome<T>>): Promise<T> {
    const outcome = await new Promise<Outcome<T>>((resolve, reject) => {
      if (this.#dead) return reject(this.#dead);
      this.#inFlight.add(reject);
      call.then(resolve, reject).finally(() => this.#inFlight.delete(reject));
    });
    if (outcome.error) throw reviveThrown(outcome.error);
    return outcome.value;
  }

  async claim(n: number, extra = 0, extraBytes = Infinity): Promise<ClaimedRow[]> {
    if (n + extra <= 0) return [];
    const r = await this.#call(this.#api.claim(n, extra, extraBytes));
    this.deadAtClaim = r.deadAtClaim;
    const rows = new Array<ClaimedRow>(r.ids.length);
    for (let i = 0; i < rows.length; i++) {
      const p = r.payloads[i]!;
      // Bytes arrive as a Uint8Array: hand them on as the Buffer better-sqlite3 gives on this thread.
      const payload = typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
      rows[i] = { id: r.ids[i]!, payload, metadata: r.metadata[i]!, attempts: r.attempts[i]!, deliveries: r.deliveries[i]!, lease: r.leases[i]! };
    }
    return rows;
  }

  ack(ok: number[], leases: number[], failures: Failure[]): Promise<AckCounts> {
    const ids = Float64Array.from(ok);
    const of = Float64Array.from(leases);
    return this.#call(this.#api.ack(Comlink.transfer(ids, [ids.buffer]), Comlink.transfer(of, [of.buffer]), failures));
  }

  renew(leases: number[]): Promise<void> {
    return this.#call(this.#api.renew(leases));
  }

  release(rows: ClaimedRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    const ids = Float64Array.from(rows, (r) => r.id);
    const attempts = Int32Array.from(rows, (r) => r.attempts);
    const deliveries = Int32Array.from(rows, (r) => r.deliveries);
    const leases = Float64Array.from(rows, (r) => r.lease);
    return this.#call(
      this.#api.release(Comlink.transfer(ids, [ids.buffer]), Comlink.transfer(attempts, [attempts.buffer]), Comlink.transfer(deliveries, [deliveries.buffer]), Comlink.transfer(leases, [leases.buffer])),
    );
  }

  /** Closes the connection and ends the thread. */
  async close(): Promise<void> {
    if (!this.#dead) await this.#call(this.#api.close()).catch(() => undefined);
    await this.#end();
  }

  async #end(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#api[Comlink.releaseProxy]();
    await this.#worker.terminate();
  }
}
