import { serializeError } from '@throughway/workers';
import { OK, cell, isEmpty, type CallInput, type CallOutput, type MessageInit, type MetadataColumns } from '@throughway/workers/internal';
import type { MainMessage } from '../message.js';
import { channels } from '../telemetry.js';
import type { PayloadRef, TaskResult } from '../runtime/runtime.js';
import { applyAckOps } from './ack-ops.js';
import type { StageHost } from './host.js';
import type { DemandSink } from './producer-stage.js';
import { Queue } from './queue.js';

export interface SlotOptions {
  maxDemand: number;
  minDemand: number;
  /** Threads runtime with no user-set demand: size calls from the measured cost per message. */
  adaptive: boolean;
  /** Tasks a slot may have in flight: 2 lets a thread start the next while the main thread
   *  handles the last; 1 with `partitionBy`, so a partition's messages run in order. */
  maxInFlight: number;
  /** One call per task (inline) or several calls per task (threads, to amortise the hop). */
  bundleCalls: boolean;
}

/** Per-call work a task should carry on threads, so the hop (~30 µs) stays a small share. */
const TARGET_CALL_MS = 2;
const MAX_ADAPTIVE_CALL = 2500;

function initOf(m: MainMessage, withMetadata: boolean): MessageInit | undefined {
  const metadata = withMetadata && !isEmpty(m.metadata);
  if (m.batcher === 'default' && m.batchKey === 'default' && m.batchMode === 'bulk' && !metadata) return undefined;
  return { metadata: metadata ? m.metadata : undefined, batcher: m.batcher, batchKey: m.batchKey, batchMode: m.batchMode };
}

/** Columns when every message has the keys of the first, all with primitive values. */
function metadataColumns(messages: MainMessage[]): MetadataColumns | undefined {
  const first = messages[0]!.metadata;
  const keys = Object.keys(first);
  if (keys.length === 0) return undefined;
  const columns: unknown[][] = keys.map(() => new Array(messages.length));
  for (let i = 0; i < messages.length; i++) {
    const metadata = messages[i]!.metadata;
    let count = 0;
    for (const key in metadata) {
      const k = keys.indexOf(key);
      const value = metadata[key];
      if (k < 0 || (value !== null && typeof value === 'object') || typeof value === 'function') return undefined;
      columns[k]![i] = value;
      count++;
    }
    if (count !== keys.length) return undefined;
  }
  return { keys, columns };
}

/**
 * One processor, Broadway's way: asks the producers for `maxDemand`, handles what arrives in
 * calls of at most `maxDemand - minDemand` messages, and asks again for what each call used.
 */
export class ProcessorSlot implements DemandSink {
  readonly index: number;
  #host: StageHost;
  #o: SlotOptions;
  #queue = new Queue<MainMessage>();
  #inFlight = 0;
  #inFlightMessages = 0;
  /** Demand asked of the producers and not yet used up by a finished call. */
  #owed = 0;
  #costMs: number | undefined;
  #tasksSeen = 0;

  constructor(index: number, host: StageHost, options: SlotOptions) {
    this.index = index;
    this.#host = host;
    this.#o = { ...options };
  }

  get maxDemand(): number {
    return this.#o.maxDemand;
  }

  get minDemand(): number {
    return this.#o.minDemand;
  }

  get idle(): boolean {
    return this.#inFlight === 0 && this.#queue.length === 0;
  }

  get inFlightTasks(): number {
    return this.#inFlight;
  }

  /** Messages in tasks not yet returned: what may land on the batchers at any moment. */
  get inFlightMessages(): number {
    return this.#inFlightMessages;
  }

  start(): void {
    this.#ask(this.#o.maxDemand);
  }

  receive(messages: MainMessage[]): void {
    this.#host.stats.inPipeline += messages.length;
    this.#queue.pushAll(messages);
    this.pump();
  }

  pump(): void {
    const host = this.#host;
    while (this.#queue.length > 0 && this.#inFlight < this.#o.maxInFlight && !host.halted && host.batchersHaveRoom()) {
      this.#startTask();
    }
  }

  #ask(count: number): void {
    if (count <= 0) return;
    this.#owed += count;
    for (const p of this.#host.producers) p.ask(this.index, count);
  }

  #startTask(): void {
    const chunk = Math.max(1, this.#o.maxDemand - this.#o.minDemand);
    const cap = this.#o.bundleCalls ? Math.max(chunk, Math.ceil(this.#o.maxDemand / 2)) : chunk;
    const taken = this.#queue.take(cap);
    const take = taken.length;
    const calls: MainMessage[][] = [];
    const inputs: CallInput[] = [];
    for (let at = 0; at < take; at += chunk) {
      const n = Math.min(chunk, take - at);
      const messages = take === n ? taken : taken.slice(at, at + n);
      const datas = new Array(n);
      const columns = this.#o.bundleCalls ? metadataColumns(messages) : undefined;
      let inits: (MessageInit | undefined)[] | undefined;
      for (let i = 0; i < n; i++) {
        const m = messages[i]!;
        datas[i] = m.data;
        const init = initOf(m, columns === undefined);
        if (init) (inits ??= new Array(n))[i] = init;
      }
      calls.push(messages);
      const input: CallInput = { datas };
      if (inits) input.inits = inits;
      if (columns) input.metadataColumns = columns;
      inputs.push(input);
    }
    this.#inFlight++;
    this.#inFlightMessages += take;
    // The clock is read only for telemetry's durationMs, when someone listens.
    const started = channels.processor.hasSubscribers ? performance.now() : 0;
    this.#host.runtime.runCalls(this.index, inputs).then(
      (result) => {
        this.#inFlightMessages -= take;
        this.#finished(calls, result, started);
      },
      (error) => {
        this.#inFlightMessages -= take;
        this.#crashed(calls, error);
      },
    );
  }

  #finished(calls: MainMessage[][], result: TaskResult, started: number): void {
    this.#inFlight--;
    const host = this.#host;
    if (host.halted) return;
    const durationMs = started === 0 ? 0 : performance.now() - started;
    let busy = 0;
    let size = 0;
    for (let c = 0; c < calls.length; c++) {
      const out = result.outputs[c]!;
      completeCall(host, this.index, calls[c]!, out, result.refs?.[c], durationMs);
      busy += out.busyMs;
      size += out.size;
    }
    host.stats.busyMs += busy;
    if (this.#o.adaptive) this.#adapt(busy, size);
    for (const call of calls) this.#used(call.length);
    this.pump();
    host.progress();
  }

  #crashed(calls: MainMessage[][], error: unknown): void {
    this.#inFlight--;
    const host = this.#host;
    if (host.halted) return;
    const all = calls.flat();
    const serialized = serializeError(error);
    if (serialized.code === 'ERR_THROUGHWAY_THREAD_DIED') {
      host.stats.threadDeaths++;
      host.logger.error({ err: serialized, messages: all.length }, 'a processor thread died; its messages are failed and the thread is replaced');
    } else {
      host.logger.error({ err: serialized, messages: all.length }, 'a processor task failed; its messages are failed');
    }
    for (const m of all) m.status = { kind: 'error', error: serialized };
    host.stats.processed += all.length;
    host.stats.processorFailed += all.length;
    host.acker.ack('processor', [], all);
    host.stats.inPipeline -= all.length;
    for (const call of calls) this.#used(call.length);
    this.pump();
    host.progress();
  }

  #used(count: number): void {
    this.#owed -= count;
    this.#ask(this.#o.maxDemand - this.#owed);
  }

  // Sizes calls so each carries about TARGET_CALL_MS of handler work: large for cheap
  // handlers (the hop dominates), small for expensive ones (so every thread gets work).
  #adapt(busyMs: number, size: number): void {
    // A thread's first task pays for loading and compiling the handler: not a cost per message.
    if (size === 0 || ++this.#tasksSeen === 1) return;
    const cost = busyMs / size;
    this.#costMs = this.#costMs === undefined ? cost : this.#costMs * 0.7 + cost * 0.3;
    const call = Math.max(1, Math.min(MAX_ADAPTIVE_CALL, Math.round(TARGET_CALL_MS / Math.max(this.#costMs, 1e-6))));
    const maxDemand = call * 2;
    // Ignore small wobbles: changing demand costs nothing, but churn makes figures hard to read.
    if (Math.abs(maxDemand - this.#o.maxDemand) / this.#o.maxDemand < 0.25) return;
    this.#o.maxDemand = maxDemand;
    this.#o.minDemand = call;
  }
}

/** Applies one processor call's results on the main thread: statuses, ack requests, acks, routing. */
function completeCall(host: StageHost, slot: number, messages: MainMessage[], out: CallOutput, refs: PayloadRef[] | undefined, durationMs: number): void {
  const size = messages.length;
  const { statuses } = out;
  if (statuses) for (let i = 0; i < size; i++) messages[i]!.status = statuses[i]!;
  else for (let i = 0; i < size; i++) messages[i]!.status = OK;
  if (out.batchers) {
    const batchers = out.batchers;
    const keys = out.batchKeys!;
    const modes = out.batchModes!;
    for (let i = 0; i < size; i++) {
      const m = messages[i]!;
      m.batcher = cell(batchers, i);
      m.batchKey = cell(keys, i);
      m.batchMode = cell(modes, i);
    }
  }
  if (out.ackOps) for (const [i, ops] of out.ackOps) applyAckOps(messages[i]!, ops, host.acker);

  // handleFailed ran in the call, before any ack: its event goes out first too.
  if (out.handleFailed && channels.handleFailed.hasSubscribers) {
    channels.handleFailed.publish({ pipeline: host.pipeline, stage: 'processor', ...out.handleFailed });
  }
  const failed: MainMessage[] = [];
  const successful: MainMessage[] = [];
  for (let i = 0; i < size; i++) {
    const m = messages[i]!;
    if (m.status.kind === 'ok') successful.push(m);
    else failed.push(m);
  }
  const { stats } = host;
  stats.calls++;
  stats.processed += size;
  stats.processorSuccessful += successful.length;
  stats.processorFailed += failed.length;

  if (host.batchers === null) {
    host.acker.ack('processor', successful, failed);
    stats.inPipeline -= size;
  } else {
    if (failed.length > 0) host.acker.ack('processor', [], failed);
    stats.inPipeline -= failed.length;
    const forward = out.forward;
    const count = forward ? forward.length : size;
    const touched = new Set<string>();
    for (let k = 0; k < count; k++) {
      const m = messages[forward ? forward[k]! : k]!;
      // A failed configureAck may have failed a message after it was processed.
      if (m.status.kind !== 'ok') continue;
      host.batchers.get(m.batcher)!.add(m, refs![k]);
      touched.add(m.batcher);
    }
    for (const name of touched) host.batchers.get(name)!.endOfChunk();
  }

  if (out.logs) for (const log of out.logs) host.logger.warn(log, log.msg);
  if (channels.processor.hasSubscribers) {
    channels.processor.publish({ pipeline: host.pipeline, processor: 'default', slot, size, successful: successful.length, failed: failed.length, durationMs });
  }
  if (channels.message.hasSubscribers) {
    for (const message of messages) channels.message.publish({ pipeline: host.pipeline, processor: 'default', message });
  }
}
