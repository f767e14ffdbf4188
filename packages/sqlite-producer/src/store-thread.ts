/**
 * Entry of a queue store thread (`sqliteQueue({ thread: true })`): owns one connection and runs
 * the producer's claims and acks on it, so that the SQLite work (about 2.5 µs a row) leaves the
 * main thread. Requests and answers are plain data; claimed ids and attempt counts travel as
 * transferred typed arrays, payloads as the strings or bytes SQLite returned.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '@throughway/workers';
import { openQueueStore, type Failure, type QueueStore, type StoreConfig } from './queue-store.js';

export type StoreRequest =
  | { op: 'claim'; seq: number; n: number; extra: number; extraBytes: number }
  | { op: 'ack'; seq: number; ok: Float64Array; leases: Float64Array; failures: Failure[] }
  | { op: 'release'; seq: number; ids: Float64Array; attempts: Int32Array; deliveries: Int32Array; leases: Float64Array }
  | { op: 'renew'; seq: number; leases: number[] }
  | { op: 'close'; seq: number };

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

export type StoreReply = { seq: number; result?: unknown; error?: ReturnType<typeof serializeError> };
export type StoreHello = { ready: true } | { ready: false; error: ReturnType<typeof serializeError> };

const port = parentPort!;
const { config, leasedBy } = workerData as { config: StoreConfig; leasedBy: string };

let store: QueueStore | undefined;
try {
  store = openQueueStore(config, leasedBy);
  port.postMessage({ ready: true } satisfies StoreHello);
} catch (error) {
  port.postMessage({ ready: false, error: serializeError(error) } satisfies StoreHello);
  port.close();
}

function claim(n: number, extra: number, extraBytes: number): EncodedRows {
  const rows = store!.claim(n, extra, extraBytes);
  const count = rows.length;
  const ids = new Float64Array(count);
  const attempts = new Int32Array(count);
  const deliveries = new Int32Array(count);
  const leases = new Float64Array(count);
  const payloads = new Array<string | Uint8Array>(count);
  const metadata = new Array<string | null>(count);
  for (let i = 0; i < count; i++) {
    const r = rows[i]!;
    ids[i] = r.id;
    attempts[i] = r.attempts;
    deliveries[i] = r.deliveries;
    leases[i] = r.lease;
    payloads[i] = r.payload;
    metadata[i] = r.metadata;
  }
  return { ids, attempts, deliveries, leases, payloads, metadata, deadAtClaim: store!.deadAtClaim };
}

if (store) {
  port.on('message', (request: StoreRequest) => {
    const { seq } = request;
    try {
      switch (request.op) {
        case 'claim': {
          const rows = claim(request.n, request.extra, request.extraBytes);
          const transfer = [rows.ids.buffer, rows.attempts.buffer, rows.deliveries.buffer, rows.leases.buffer] as ArrayBuffer[];
          port.postMessage({ seq, result: rows } satisfies StoreReply, transfer);
          return;
        }
        case 'ack':
          port.postMessage({ seq, result: store!.ack(Array.from(request.ok), Array.from(request.leases), request.failures) } satisfies StoreReply);
          return;
        case 'renew':
          store!.renew(request.leases);
          port.postMessage({ seq } satisfies StoreReply);
          return;
        case 'release': {
          const rows = Array.from(request.ids, (id, i) => ({ id, attempts: request.attempts[i]!, deliveries: request.deliveries[i]!, lease: request.leases[i]!, payload: '', metadata: null }));
          store!.release(rows);
          port.postMessage({ seq } satisfies StoreReply);
          return;
        }
        case 'close':
          store!.close();
          port.postMessage({ seq } satisfies StoreReply);
          port.close();
          return;
      }
    } catch (error) {
      port.postMessage({ seq, error: serializeError(error) } satisfies StoreReply);
    }
  });
}
