import { serializeError } from '@throughway/workers';
import type { MainMessage } from '../message.js';
import { channels } from '../telemetry.js';
import type { CallOutput } from '@throughway/workers/internal';
import type { RuntimeRules, PayloadRef, TaskResult } from '../runtime/runtime.js';
import { applyOutput } from './apply-output.js';
import { logErr } from './failure-log.js';
import type { BatchSink, StageHost } from './host.js';
import type { DemandSink } from './producer-stage.js';
import { Queue } from './queue.js';

export interface SlotOptions {
  maxDemand: number;
  minDemand: number;
  /** With `partitionBy`: one task at a time, so a partition's messages run in order. */
  ordered: boolean;
  /** The user set `maxDemand`: never adapt it. */
  demandSetByUser: boolean;
}

/**
 * Per-call work a task should carry on threads, so the hop stays a small share. The hop's cost is
 * not only its ~30 µs: each task's reply wakes the main thread, which on a machine with as many
 * cores as processor threads takes a core from a processor thread (a preemption, and its caches).
 * At 2 ms, a CPU-heavy pipeline on 2 cores woke the main thread ~1,400 times/s and had the
 * processor threads preempted ~1,400 times/s; at 10 ms, ~290 and ~590 (/proc context switches,
 * ~50 µs/msg), and the pipeline went from 0.86/0.86 to 0.92/0.84 of two bare threads at ~50 µs
 * and 0.87/0.88 to 0.90/0.91 at ~500 µs (`bench --only pipeline-cpu`, alternating). A message
 * may wait up to about two calls (~20 ms) in a thread's queue; set `maxDemand` to bound it.
 */
const TARGET_CALL_MS = 10;
const MAX_ADAPTIVE_CALL = 2500;

/**
 * With a `maxDemand` the user set, a slot holds few messages, and each task's hop costs the main
 * thread ~20-50 µs whenever the thread it wakes was asleep (most of the time, on 2 cores). Two
 * tasks of half of it in flight pay that twice per `maxDemand` messages; one task carrying all of
 * it pays it once, but leaves the thread idle while the main thread handles the answer, and a call
 * is acked only when the other calls of its task are done. So a slot starts with two tasks, and
 * carries all it holds in one task only while whole tasks are measured short (the last
 * RECENT_TASKS under ONE_TASK_BELOW_MS); as many of TWO_TASKS_FROM_MS or more bring back two.
 * Measured with `maxDemand: 100`, a no-op handler and integers, 3 alternating pairs of
 * `pipelineThroughput` runs (bench/src/harness/pipeline.ts): 1.05-1.20M -> 1.52-1.75M msg/s,
 * main-thread CPU 0.84-0.89 -> 0.59-0.60 µs a message. With batchers, a task of all the slot
 * holds lands on them at once: it starts only when the batchers have room for all of it (see
 * `hasRoom`), so the stages never hold more than with two half tasks. With 2 batch slots
 * (`maxDemand: 100`, batchSize 100, integers, strings and objects, 6 alternating pairs) it cut
 * the CPU of all threads per message by 5-17% and the main thread's by 2-19%.
 */
const ONE_TASK_BELOW_MS = 0.25;
const RECENT_TASKS = 3;
const TWO_TASKS_FROM_MS = 0.5;

/**
 * One processor, Broadway's way: asks the producers for `maxDemand`, handles what arrives in
 * calls of at most `maxDemand - minDemand` messages, and asks again for what each call used.
 */
export class ProcessorSlot implements DemandSink {
  readonly index: number;
  #host: StageHost;
  #maxDemand: number;
  #minDemand: number;
  /** Tasks this slot may have in flight now (with a user-set demand, see ONE_TASK_BELOW_MS). */
  #tasksInFlight: number;
  /** The runtime's number of tasks in flight, when the slot may go down to one (user-set demand). */
  #flexibleInFlight: number | undefined;
  /** What a whole task (maxDemand messages) cost, by the last RECENT_TASKS tasks (ms). */
  #recentTaskMs: number[] = [];
  /** Asking the producers for what a task used: what arrives waits, so one task takes it all. */
  #asking = false;
  #bundleCalls: boolean;
  #adaptive: boolean;
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
    const rules: RuntimeRules = host.runtime.rules;
    this.#maxDemand = options.maxDemand;
    this.#minDemand = options.minDemand;
    this.#tasksInFlight = options.ordered ? 1 : rules.tasksInFlight;
    this.#bundleCalls = rules.bundleCalls;
    this.#adaptive = rules.adaptiveDemand && !options.demandSetByUser;
    if (rules.bundleCalls && options.demandSetByUser && this.#tasksInFlight > 1) this.#flexibleInFlight = this.#tasksInFlight;
  }

  get maxDemand(): number {
    return this.#maxDemand;
  }

  get minDemand(): number {
    return this.#minDemand;
  }

  get idle(): boolean {
    return this.#inFlight === 0 && this.#queue.length === 0;
  }

  /** Tasks the slot may have in flight now. */
  get taskLimit(): number {
    return this.#tasksInFlight;
  }

  get inFlightTasks(): number {
    return this.#inFlight;
  }

  /** Messages in tasks not yet returned: what may land on the batchers at any moment. */
  get inFlightMessages(): number {
    return this.#inFlightMessages;
  }

  start(): void {
    this.#ask(this.#maxDemand);
  }

  receive(messages: MainMessage[]): void {
    this.#queue.pushAll(messages);
    if (!this.#asking) this.pump();
  }

  pump(): void {
    const host = this.#host;
    while (this.#queue.length > 0 && this.#inFlight < this.#tasksInFlight && !host.run.halted && host.batchersHaveRoom(this.#mustFit())) {
      this.#startTask();
    }
  }

  /** Most messages the next task takes. */
  #taskCap(): number {
    const chunk = Math.max(1, this.#maxDemand - this.#minDemand);
    if (!this.#bundleCalls) return chunk;
    // Half of what the slot may hold; all of it when it chose to have one task in flight.
    const share = this.#flexibleInFlight === undefined ? 2 : this.#tasksInFlight;
    return Math.max(chunk, Math.ceil(this.#maxDemand / share));
  }

  /**
   * What the batchers must have room for before the next task starts: with one task in flight it
   * carries all the slot holds, which must fit whole (the bound two half tasks keep); else 1.
   */
  #mustFit(): number {
    return this.#host.batchers !== null && this.#tasksInFlight === 1 && this.#flexibleInFlight !== undefined ? Math.min(this.#queue.length, this.#taskCap()) : 1;
  }

  #ask(count: number): void {
    if (count <= 0) return;
    this.#owed += count;
    for (const p of this.#host.producers) p.ask(this.index, count);
  }

  #startTask(): void {
    const chunk = Math.max(1, this.#maxDemand - this.#minDemand);
    const taken = this.#queue.take(this.#taskCap());
    const take = taken.length;
    const calls: MainMessage[][] = [];
    for (let at = 0; at < take; at += chunk) calls.push(take <= chunk ? taken : taken.slice(at, at + chunk));
    this.#inFlight++;
    this.#inFlightMessages += take;
    this.#host.stats.tasks++;
    // The clock is read only for telemetry's durationMs, when someone listens.
    const started = channels.processor.hasSubscribers ? performance.now() : 0;
    this.#host.runtime.runCalls(this.index, calls).then(
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
    if (host.run.halted) return;
    const durationMs = started === 0 ? 0 : performance.now() - started;
    let busy = 0;
    let size = 0;
    const touched: BatchSink[] | null = host.batchers === null ? null : [];
    for (let c = 0; c < calls.length; c++) {
      const out = result.outputs[c]!;
      completeCall(host, this.index, calls[c]!, out, result.refs[c], durationMs, touched);
      busy += out.busyMs;
      size += out.size;
    }
    host.stats.busyMs += result.busyMs;
    if (this.#adaptive) this.#adapt(busy, size);
    if (this.#flexibleInFlight !== undefined) this.#chooseInFlight(busy, size);
    // The batchers counted this task's batches already (room is checked as before); only the
    // order of the two posts is chosen here. With another task of this slot still in flight, its
    // thread has work: the batches go first, so the batch worker starts on them. With none, the
    // thread waits for this slot's next task: it goes first, and the main thread copies and posts
    // the batches while that thread wakes. Measured on Node 20 (`maxDemand: 100`, 2 batch slots,
    // alternating runs): 200-byte strings 0.68-0.84M vs 0.59-0.81M msg/s (8 of 10 pairs faster),
    // integers and objects within the noise. Sending the batches after the next task in every
    // case cost the default demand (two tasks in flight) 5-12% (6 of 6 pairs): there the batch
    // worker is what waits.
    const batchesFirst = this.#inFlight > 0;
    if (batchesFirst) send(touched);
    this.#usedAll(calls);
    if (!batchesFirst) send(touched);
    host.progress();
  }

  #crashed(calls: MainMessage[][], error: unknown): void {
    this.#inFlight--;
    const host = this.#host;
    if (host.run.halted) return;
    const all = calls.flat();
    const serialized = serializeError(error);
    const fields = { pipeline: host.pipeline, stage: 'processor', slot: this.index, messages: all.length, err: logErr(serialized) };
    if (serialized.code === 'ERR_THROUGHWAY_THREAD_DIED') {
      host.stats.threadDeaths++;
      host.logger.error(fields, 'a processor thread died; its messages are failed and the thread is replaced');
    } else {
      host.logger.error(fields, 'a processor task failed; its messages are failed');
    }
    for (const m of all) m.status = { kind: 'error', error: serialized };
    host.stats.processed += all.length;
    host.stats.processorFailed += all.length;
    host.acker.ack('processor', [], all);
    host.stats.finish(all.length);
    this.#usedAll(calls);
    host.progress();
  }

  /** Asks for what a task's calls used (one top-up per call), then starts the next task. */
  #usedAll(calls: MainMessage[][]): void {
    this.#asking = true;
    try {
      for (const call of calls) this.#used(call.length);
    } finally {
      this.#asking = false;
    }
    this.pump();
  }

  #used(count: number): void {
    this.#owed -= count;
    this.#ask(this.#maxDemand - this.#owed);
  }

  #chooseInFlight(busyMs: number, size: number): void {
    // A thread's first task pays for loading and compiling the handler: not a cost per message.
    if (size === 0 || ++this.#tasksSeen === 1) return;
    const recent = this.#recentTaskMs;
    recent.push((busyMs / size) * this.#maxDemand);
    if (recent.length > RECENT_TASKS) recent.shift();
    if (recent.length < RECENT_TASKS) return;
    // A task's time is the thread's wall time: a preempted thread (on 2 cores, the main thread
    // takes its core now and then) reads long. Only a run of long tasks, or of short ones, changes
    // the choice.
    if (recent.every((ms) => ms >= TWO_TASKS_FROM_MS)) this.#tasksInFlight = this.#flexibleInFlight!;
    else if (recent.every((ms) => ms < ONE_TASK_BELOW_MS)) this.#tasksInFlight = 1;
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
    if (Math.abs(maxDemand - this.#maxDemand) / this.#maxDemand < 0.25) return;
    this.#maxDemand = maxDemand;
    this.#minDemand = call;
  }
}

/** The batches emitted since the last send go to their workers (the batchers counted them already). */
function send(touched: BatchSink[] | null): void {
  if (touched !== null) for (const batcher of touched) batcher.send();
}

/** Applies one processor call's results on the main thread, then acks and routes. */
function completeCall(host: StageHost, slot: number, messages: MainMessage[], out: CallOutput, refs: PayloadRef[] | undefined, durationMs: number, touched: BatchSink[] | null): void {
  const size = messages.length;
  const applied = applyOutput(host, 'processor', messages, out, refs, { slot });
  const { successful, failed } = applied;
  const { stats } = host;
  stats.calls++;
  stats.processed += size;
  stats.processorSuccessful += successful.length;
  stats.processorFailed += failed.length;

  if (host.batchers === null) {
    host.acker.ack('processor', successful, failed);
    stats.finish(size);
  } else {
    if (failed.length > 0) host.acker.ack('processor', [], failed);
    stats.finish(failed.length);
    // The batchers this call's messages went to (arrays, not sets: almost always one).
    const chunk: BatchSink[] = [];
    let last: BatchSink | undefined;
    for (let i = 0; i < size; i++) {
      const m = messages[i]!;
      // A failed configureAck may have failed a message after it was processed.
      if (m.status.kind !== 'ok') continue;
      const batcher = host.batchers.get(m.batcher)!;
      batcher.add(m, applied.refs![i]!);
      if (batcher !== last && !chunk.includes(batcher)) chunk.push(batcher);
      last = batcher;
    }
    for (const batcher of chunk) {
      batcher.endOfChunk();
      if (!touched!.includes(batcher)) touched!.push(batcher);
    }
  }

  if (channels.processor.hasSubscribers) {
    channels.processor.publish({ pipeline: host.pipeline, processor: 'default', slot, size, successful: successful.length, failed: failed.length, durationMs });
  }
  if (channels.message.hasSubscribers) {
    for (const message of messages) channels.message.publish({ pipeline: host.pipeline, processor: 'default', message });
  }
}
