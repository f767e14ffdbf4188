import type { BatchInfo, BatchTrigger } from '@throughway/workers';
import { serializeError } from '@throughway/workers';
import { wantsData, type MainMessage } from '../message.js';
import type { ResolvedBatcher } from '../options.js';
import type { BatchResult, PayloadRef } from '../runtime/runtime.js';
import { channels } from '../telemetry.js';
import { applyOutput } from './apply-output.js';
import { logErr } from './failure-log.js';
import { hashKey } from './hash-key.js';
import type { BatchSink, StageHost } from './host.js';

interface Pending {
  key: unknown;
  messages: MainMessage[];
  refs: PayloadRef[];
  timer?: NodeJS.Timeout;
  flush: boolean;
}

interface Batch {
  info: BatchInfo;
  messages: MainMessage[];
  refs: PayloadRef[];
}

interface Slot {
  queue: Batch[];
  running: number;
  /** Messages in batches given to this slot and not yet done: its load. */
  load: number;
  /** Keys assigned to it; breaks ties between slots of equal load. */
  keys: number;
}

/**
 * Keys are assigned a slot on first sight and keep it. Past this many distinct keys, new keys
 * are placed by hash instead, so the table stays bounded for high-cardinality keys.
 */
const MAX_ASSIGNED_KEYS = 4096;

/**
 * Calls a slot may have in flight. The runtime still runs a slot's batches one at a time in
 * order; sending ahead only hides the round trip through the (busy) main thread.
 */
const CALLS_IN_FLIGHT = 2;
const MAX_BATCHES_PER_CALL = 64;

// Keys cross threads by copy, so object keys are compared by content, not identity.
function mapKey(key: unknown): unknown {
  return key !== null && typeof key === 'object' ? `\u0000json:${JSON.stringify(key)}` : key;
}

/**
 * One batcher: groups messages per batch key into batches, emitted at `batchSize` ('size'),
 * `batchTimeout` after a batch's first message ('timeout'), at the end of a processor call
 * that brought a 'flush' message ('flush'), or on shutdown ('flush'). A key always goes to the
 * same slot and a slot runs one batch at a time, so one key is never handled concurrently. A new
 * key goes to the least loaded slot: hashing alone would often put the few busy keys of a
 * pipeline (say 'customers' and 'orders') on one slot and leave the other idle.
 */
export class BatcherStage implements BatchSink {
  readonly options: ResolvedBatcher;
  #host: StageHost;
  #pending = new Map<unknown, Pending>();
  #slotOfKey = new Map<unknown, number>();
  #flushKeys: unknown[] = [];
  #slots: Slot[];
  #pendingCount = 0;
  #queuedCount = 0;
  /**
   * Slots given batches during the current processor task's messages: they are started at its
   * end (`send`), so that a task's batches (say 40 of a 4,000-message call) go in one thread hop,
   * not the first alone, the second alone and the rest after those two came back.
   */
  #slotsToRun = new Set<number>();
  /**
   * Full batches (queued or running) plus what the processors hold in flight, beyond which the
   * processors hand over nothing more (with their demand added: see `hasRoom`). Memory held is
   * bounded by it: partial batches under keys × batchSize, full batches under this room plus one
   * hand-over and the partial batches that hand-over completes.
   */
  #capacity: number;

  constructor(options: ResolvedBatcher, host: StageHost) {
    this.options = options;
    this.#host = host;
    this.#slots = Array.from({ length: options.concurrency }, () => ({ queue: [], running: 0, load: 0, keys: 0 }));
    this.#capacity = options.maxDemand + options.concurrency * options.batchSize * 2;
  }

  get pendingCount(): number {
    return this.#pendingCount;
  }

  get queuedCount(): number {
    return this.#queuedCount;
  }

  /**
   * Room for more from the processors. Only full batches count against it (emitted and not yet
   * done: queued for a slot or running), never the messages in partial batches: as in Broadway,
   * whose batcher spends its consumers' demand on the batches it emits, a partial batch only
   * fills by taking more, so counting it would leave several keys' partial batches waiting for
   * `batchTimeout`. Partial batches are bounded by themselves: under `batchSize` per key.
   * `upstream` is what the processors may hand over at once (their demand): a batcher that
   * admits less than one processor task would stall them. `inFlight` is what processors hold
   * already and will hand over whatever is decided now; `taking` is the size of the task about to
   * start when it must fit whole (a slot with one task in flight, see processor-slot.ts), else 1.
   */
  hasRoom(upstream: number, inFlight: number, taking: number): boolean {
    return this.#queuedCount + inFlight + taking <= this.#capacity + upstream;
  }

  get idle(): boolean {
    return this.#pendingCount === 0 && this.#queuedCount === 0;
  }

  add(message: MainMessage, ref: PayloadRef): void {
    const key = mapKey(message.batchKey);
    let p = this.#pending.get(key);
    if (!p) {
      p = { key: message.batchKey, messages: [], refs: [], flush: false };
      this.#pending.set(key, p);
      const pending = p;
      p.timer = setTimeout(() => this.#emit(key, pending, 'timeout'), this.options.batchTimeout);
    }
    p.messages.push(message);
    p.refs.push(ref);
    this.#pendingCount++;
    if (message.batchMode === 'flush' && !p.flush) {
      p.flush = true;
      this.#flushKeys.push(key);
    }
    if (p.messages.length >= this.options.batchSize) this.#emit(key, p, 'size', false);
  }

  /** The end of one processor call's messages: batches holding a 'flush' message are emitted. */
  endOfChunk(): void {
    if (this.#flushKeys.length === 0) return;
    const keys = this.#flushKeys;
    this.#flushKeys = [];
    for (const key of keys) {
      const p = this.#pending.get(key);
      if (p?.flush) this.#emit(key, p, 'flush', false);
    }
  }

  /** Every slot given batches since the last `send` starts on them. */
  send(): void {
    if (this.#slotsToRun.size === 0) return;
    const slots = [...this.#slotsToRun];
    this.#slotsToRun.clear();
    for (const slot of slots) this.#run(slot);
  }

  /** Shutdown: every pending batch goes now, with trigger 'flush'. */
  flushAll(): void {
    for (const [key, p] of [...this.#pending]) this.#emit(key, p, 'flush');
  }

  stop(): void {
    for (const p of this.#pending.values()) clearTimeout(p.timer);
  }

  /** `now`: start the slot at once; else at `send`, which the caller promises to call. */
  #emit(key: unknown, p: Pending, trigger: BatchTrigger, now = true): void {
    if (this.#pending.get(key) !== p) return;
    clearTimeout(p.timer);
    this.#pending.delete(key);
    const size = p.messages.length;
    this.#pendingCount -= size;
    this.#queuedCount += size;
    const slotIndex = this.#slotFor(key);
    const info: BatchInfo = { batcher: this.options.name, batchKey: p.key, partition: null, size, trigger };
    const slot = this.#slots[slotIndex]!;
    slot.load += size;
    slot.queue.push({ info, messages: p.messages, refs: p.refs });
    if (now) this.#run(slotIndex);
    else this.#slotsToRun.add(slotIndex);
  }

  #slotFor(key: unknown): number {
    const n = this.#slots.length;
    if (n === 1) return 0;
    let slot = this.#slotOfKey.get(key);
    if (slot !== undefined) return slot;
    if (this.#slotOfKey.size >= MAX_ASSIGNED_KEYS) return hashKey(key) % n;
    slot = 0;
    for (let s = 1; s < n; s++) {
      const a = this.#slots[s]!;
      const b = this.#slots[slot]!;
      if (a.load < b.load || (a.load === b.load && a.keys < b.keys)) slot = s;
    }
    this.#slots[slot]!.keys++;
    this.#slotOfKey.set(key, slot);
    return slot;
  }

  #run(slotIndex: number): void {
    const slot = this.#slots[slotIndex]!;
    if (slot.running >= CALLS_IN_FLIGHT || slot.queue.length === 0 || this.#host.run.halted) return;
    // Everything queued for the slot goes in one call: one thread hop for many batches.
    const batches = slot.queue.splice(0, MAX_BATCHES_PER_CALL);
    slot.running++;
    this.#host.stats.batcher(this.options.name).calls++;
    const started = performance.now();
    const jobs = batches.map((b) => ({ info: b.info, refs: b.refs, modes: b.messages.map((m) => m.batchMode), want: b.messages.some(wantsData) }));
    this.#host.runtime.runBatches(this.options.name, slotIndex, jobs).then(
      (outputs) => {
        for (let i = 0; i < batches.length; i++) this.#finished(slotIndex, batches[i]!, outputs[i]!);
        this.#called(slotIndex);
      },
      (error) => {
        for (const batch of batches) this.#crashed(slotIndex, batch, error, started);
        this.#called(slotIndex);
      },
    );
  }

  #called(slotIndex: number): void {
    this.#slots[slotIndex]!.running--;
    this.#run(slotIndex);
    this.#host.progress();
  }

  #finished(slotIndex: number, batch: Batch, out: BatchResult): void {
    if (this.#host.run.halted) return;
    const { successful, failed, notReturned } = applyOutput(this.#host, 'batcher', batch.messages, out, out.refs, { slot: slotIndex });
    this.#done(slotIndex, batch, successful, failed, notReturned, out.busyMs);
  }

  #crashed(slotIndex: number, batch: Batch, error: unknown, started: number): void {
    const host = this.#host;
    if (host.run.halted) return;
    const serialized = serializeError(error);
    host.logger.error(
      { pipeline: host.pipeline, stage: 'batcher', batcher: this.options.name, slot: slotIndex, messages: batch.messages.length, err: logErr(serialized) },
      'a batch worker thread died; its batch is failed and the thread is replaced',
    );
    for (const m of batch.messages) m.status = { kind: 'error', error: serialized };
    this.#done(slotIndex, batch, [], batch.messages, 0, performance.now() - started);
  }

  #done(slotIndex: number, batch: Batch, successful: MainMessage[], failed: MainMessage[], notReturned: number, durationMs: number): void {
    const host = this.#host;
    const { info } = batch;
    this.#slots[slotIndex]!.load -= info.size;
    host.acker.ack('batcher', successful, failed);
    const stats = host.stats.batcher(this.options.name);
    stats.batches++;
    stats.messages += info.size;
    stats.successful += successful.length;
    stats.failed += failed.length;
    stats.notReturned += notReturned;
    host.stats.finish(info.size);
    this.#queuedCount -= info.size;
    if (channels.batch.hasSubscribers) {
      channels.batch.publish({ pipeline: host.pipeline, batcher: this.options.name, slot: slotIndex, batchInfo: info, successful, failed, durationMs });
    }
  }
}
