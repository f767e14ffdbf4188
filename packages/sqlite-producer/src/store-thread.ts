/**
 * Entry of a queue store thread (`sqliteQueue({ thread: true })`): owns one connection and runs
 * the producer's claims and acks on it, so that the SQLite work (about 2.5 µs a row) leaves the
 * main thread. Driven over comlink, as the batch workers are. Claimed ids and attempt counts
 * travel as transferred typed arrays, payloads as the strings or bytes SQLite returned.
 *
 * Every call answers with an {@link Outcome} rather than throwing: comlink would keep only an
 * error's name and message, and the producer needs its `code` (SQLITE_BUSY, ERR_THROUGHWAY_...).
 */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { serializeError, type SerializedError } from '@throughway/workers';
import { openQueueStore, type AckCounts, type ClaimedRow, type Failure, type QueueStore, type StoreConfig } from './queue-store.js';

/** A call's result, or the error it threw as plain data (revived on the main thread). */
export type Outcome<T> = { value: T; error?: undefined } | { error: SerializedError };

/** Claimed rows, column by column. */
export interface EncodedRows {
  ids: Float64Array;
  attempts: Int32Array;
  deliveries: Int32Array;
  leases: Float64Array;
  payloads: (string | Uint8Array)[];
  metadata: (string | null)[];
  deadAtClaim: number;
}

/** What the main thread calls on a store thread. Calls run one at a time, in the order sent. */
export interface StoreThreadApi {
  open(config: StoreConfig, leasedBy: string): Outcome<void>;
  claim(n: number, extra: number, extraBytes: number): Outcome<EncodedRows>;
  ack(ok: Float64Array, leases: Float64Array, failures: Failure[]): Outcome<AckCounts>;
  release(ids: Float64Array, attempts: Int32Array, deliveries: Int32Array, leases: Float64Array): Outcome<void>;
  renew(leases: number[]): Outcome<void>;
  close(): Outcome<void>;
}

let store: QueueStore | undefined;

function outcome<T>(run: () => T): Outcome<T> {
  try {
    return { value: run() };
  } catch (error) {
    return { error: serializeError(error) };
  }
}

function encodeRows(rows: ClaimedRow[], deadAtClaim: number): EncodedRows {
  const count = rows.length;
  const out: EncodedRows = {
    ids: new Float64Array(count),
    attempts: new Int32Array(count),
    deliveries: new Int32Array(count),
    leases: new Float64Array(count),
    payloads: new Array<string | Uint8Array>(count),
    metadata: new Array<string | null>(count),
    deadAtClaim,
  };
  for (let i = 0; i < count; i++) {
    const r = rows[i]!;
    out.ids[i] = r.id;
    out.attempts[i] = r.attempts;
    out.deliveries[i] = r.deliveries;
    out.leases[i] = r.lease;
    out.payloads[i] = r.payload;
    out.metadata[i] = r.metadata;
  }
  return out;
}

const api: StoreThreadApi = {
  open: (config, leasedBy) => outcome(() => void (store = openQueueStore(config, leasedBy))),
  claim(n, extra, extraBytes) {
    const result = outcome(() => {
      const rows = store!.claim(n, extra, extraBytes);
      return encodeRows(rows, store!.deadAtClaim);
    });
    if (result.error) return result;
    const { ids, attempts, deliveries, leases } = result.value;
    return Comlink.transfer(result, [ids.buffer, attempts.buffer, deliveries.buffer, leases.buffer] as ArrayBuffer[]);
  },
  ack: (ok, leases, failures) => outcome(() => store!.ack(Array.from(ok), Array.from(leases), failures)),
  release: (ids, attempts, deliveries, leases) =>
    outcome(() => store!.release(Array.from(ids, (id, i) => ({ id, attempts: attempts[i]!, deliveries: deliveries[i]!, lease: leases[i]!, payload: '', metadata: null })))),
  renew: (leases) => outcome(() => store!.renew(leases)),
  close: () => outcome(() => store?.close()),
};

Comlink.expose(api, nodeEndpoint(parentPort!));
