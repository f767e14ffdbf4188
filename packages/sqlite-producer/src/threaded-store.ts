import { Worker } from 'node:worker_threads';
import { ThroughwayError } from '@throughway/workers';
import { reviveThrown } from '@throughway/workers/internal';
import type { AckCounts, ClaimedRow, Failure, QueueStoreLike, StoreConfig } from './queue-store.js';
import type { EncodedRows, StoreHello, StoreReply, StoreRequest } from './store-thread.js';

type SerializedError = { name: string; message: string; stack?: string; code?: string };

const entry = new URL('./store-thread.js', import.meta.url);

/** Rebuilds an error that crossed from the store thread, keeping its code (SQLITE_BUSY, ERR_THROUGHWAY_...). */
const revive = (e: SerializedError): Error => reviveThrown(e);

/**
 * The main thread's handle on a store thread (see store-thread.ts): the same calls as QueueStore,
 * answered with promises. The thread handles requests one at a time, in order, so a claim never
 * overlaps an ack on the connection. If the thread dies, every pending and later call rejects;
 * the rows it had leased come back when their leases expire.
 */
export class ThreadedQueueStore implements QueueStoreLike {
  readonly leasedBy: string;
  deadAtClaim = 0;
  #worker: Worker;
  #seq = 0;
  #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #dead: Error | undefined;
  #exited: Promise<void>;

  private constructor(worker: Worker, leasedBy: string) {
    this.#worker = worker;
    this.leasedBy = leasedBy;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (reply: StoreReply) => {
      const waiter = this.#pending.get(reply.seq);
      if (!waiter) return;
      this.#pending.delete(reply.seq);
      if (reply.error) waiter.reject(revive(reply.error));
      else waiter.resolve(reply.result);
    });
    const die = (error: Error) => {
      this.#dead ??= error;
      for (const w of this.#pending.values()) w.reject(this.#dead);
      this.#pending.clear();
    };
    worker.on('error', (error) => die(new ThroughwayError('ERR_THROUGHWAY_SQLITE_STORE_THREAD', `the sqlite queue store thread died: ${error.message}`, { cause: error })));
    worker.on('exit', () => die(new ThroughwayError('ERR_THROUGHWAY_SQLITE_STORE_THREAD', 'the sqlite queue store thread has exited')));
  }

  /** Starts the thread and waits until it has opened (and migrated) the database. */
  static start(config: StoreConfig, leasedBy: string): Promise<ThreadedQueueStore> {
    const worker = new Worker(entry, { workerData: { config, leasedBy } });
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      worker.once('error', onError);
      worker.once('message', (hello: StoreHello) => {
        worker.off('error', onError);
        if (hello.ready) resolve(new ThreadedQueueStore(worker, leasedBy));
        else {
          void worker.terminate();
          reject(revive(hello.error));
        }
      });
    });
  }

  #call<T>(request: StoreRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(request.seq, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.postMessage(request, transfer);
    });
  }

  async claim(n: number, extra = 0, extraBytes = Infinity): Promise<ClaimedRow[]> {
    if (n + extra <= 0) return [];
    const r = await this.#call<EncodedRows>({ op: 'claim', seq: ++this.#seq, n, extra, extraBytes });
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
    return this.#call<AckCounts>({ op: 'ack', seq: ++this.#seq, ok: ids, leases: of, failures }, [ids.buffer, of.buffer]);
  }

  renew(leases: number[]): Promise<void> {
    return this.#call<void>({ op: 'renew', seq: ++this.#seq, leases });
  }

  release(rows: ClaimedRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    const ids = Float64Array.from(rows, (r) => r.id);
    const attempts = Int32Array.from(rows, (r) => r.attempts);
    const deliveries = Int32Array.from(rows, (r) => r.deliveries);
    const leases = Float64Array.from(rows, (r) => r.lease);
    return this.#call<void>({ op: 'release', seq: ++this.#seq, ids, attempts, deliveries, leases }, [ids.buffer, attempts.buffer, deliveries.buffer, leases.buffer]);
  }

  /** Closes the connection and waits for the thread to end. */
  async close(): Promise<void> {
    if (!this.#dead) await this.#call<void>({ op: 'close', seq: ++this.#seq }).catch(() => undefined);
    await Promise.race([this.#exited, new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())]);
    await this.#worker.terminate();
  }
}
