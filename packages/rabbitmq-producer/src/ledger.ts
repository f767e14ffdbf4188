import type { Channel, Message } from 'amqplib';
import type { OnFailure } from './options.js';
import { rabbitmqChannels } from './telemetry.js';

/** Counters of one producer, across its connections. */
export interface RabbitmqStats {
  /** Messages delivered by the broker. */
  delivered: number;
  /** Messages acked (each counted once, whether by a multiple ack or alone). */
  acked: number;
  /** Messages rejected without requeue (dead-lettered when the queue has a dead-letter exchange). */
  rejected: number;
  /** Failed messages rejected with requeue. */
  requeued: number;
  /** Messages received but never handed to the pipeline, given back (requeued) on drain. */
  released: number;
  /** Messages in flight on a connection that died: never acked by us, redelivered by the broker. */
  dropped: number;
  /** basic.ack frames sent. */
  ackFrames: number;
  connects: number;
  disconnects: number;
}

export function emptyStats(): RabbitmqStats {
  return { delivered: 0, acked: 0, rejected: 0, requeued: 0, released: 0, dropped: 0, ackFrames: 0, connects: 0, disconnects: 0 };
}

/** A finished tag waiting for the ack of the contiguous run it belongs to. */
const ACK = 1;
/** A finished tag already settled at the broker (rejected, released, or acked alone). */
const SETTLED = 0;

/**
 * The delivery tags of one channel, and when to ack them.
 *
 * Delivery tags count 1, 2, 3, ... per channel. Every tag below `#low` is settled at the broker.
 * A success waits in `#done` until every tag below it has finished too; then one
 * `basic.ack(multiple=true)` on the highest of the run acks all of them, so a tag still in the
 * pipeline is never acked by a multiple ack. Failures are rejected at once, one by one: a
 * `nack(multiple)` does not raise a quorum queue's delivery count, so a poison message would
 * loop forever.
 *
 * A slow message holds back the acks of everything after it, and those count against the
 * prefetch: once half the prefetch is finished but held back, the held tags are acked one by
 * one, so one slow message cannot stall the consumer.
 *
 * Acks go only to the channel the message came from (delivery tags mean nothing on another).
 * Once the channel is gone the ledger is dead: acks for its messages are dropped, and the broker
 * redelivers them.
 */
export class ChannelLedger {
  readonly queue: string;
  /** What a failed message does unless `configureAck` said otherwise. */
  readonly onFailure: OnFailure;
  readonly #channel: Channel;
  readonly #stats: RabbitmqStats;
  readonly #holdLimit: number;
  #alive = true;
  #low = 1;
  #next = 1;
  #done = new Map<number, number>();
  /** Finished successes at or above a gap (waiting on an unfinished lower tag). */
  #held = 0;
  #ackUpTo = 0;
  #runLength = 0;

  constructor(channel: Channel, options: { queue: string; prefetch: number; onFailure: OnFailure }, stats: RabbitmqStats) {
    this.#channel = channel;
    this.queue = options.queue;
    this.onFailure = options.onFailure;
    this.#stats = stats;
    this.#holdLimit = Math.max(1, Math.floor(options.prefetch / 2));
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** Tags delivered and not settled at the broker (nor waiting in a pending ack). */
  get outstanding(): number {
    let settled = 0;
    for (const state of this.#done.values()) if (state === SETTLED) settled++;
    return this.#next - this.#low - settled;
  }

  delivered(tag: number): void {
    // The broker numbers deliveries on a channel consecutively from 1.
    if (tag >= this.#next) this.#next = tag + 1;
    this.#stats.delivered++;
  }

  succeeded(tag: number): void {
    // A dead channel's messages were counted as dropped when it died.
    if (!this.#alive) return;
    if (tag < this.#low || this.#done.has(tag)) return;
    this.#done.set(tag, ACK);
    this.#held++;
  }

  /** Rejects now; `requeue` puts it back in the queue, otherwise it is dropped or dead-lettered. */
  reject(tag: number, requeue: boolean, released = false): void {
    if (!this.#alive) return;
    if (tag < this.#low || this.#done.has(tag)) return;
    if (!this.#send(() => this.#channel.reject(message(tag), requeue))) return;
    this.#done.set(tag, SETTLED);
    if (released) this.#stats.released++;
    else if (requeue) this.#stats.requeued++;
    else this.#stats.rejected++;
    if (rabbitmqChannels.reject.hasSubscribers) rabbitmqChannels.reject.publish({ queue: this.queue, deliveryTag: tag, requeue });
  }

  /** Sends the acks that are due: one multiple ack for the finished run from `#low`, then any held ones past the limit. */
  flush(): void {
    if (!this.#alive) return;
    const done = this.#done;
    while (true) {
      const state = done.get(this.#low);
      if (state === undefined) break;
      done.delete(this.#low);
      if (state === ACK) {
        this.#ackUpTo = this.#low;
        this.#runLength++;
        this.#held--;
      }
      this.#low++;
    }
    if (this.#runLength > 0) {
      const tag = this.#ackUpTo;
      const count = this.#runLength;
      this.#runLength = 0;
      if (!this.#send(() => this.#channel.ack(message(tag), true))) return;
      this.#acked(tag, true, count);
    }
    if (this.#held >= this.#holdLimit) this.#ackHeld();
  }

  /** The channel is gone: nothing more is sent on it. Returns how many messages it held unacked. */
  kill(): number {
    if (!this.#alive) return 0;
    const dropped = this.outstanding;
    this.#alive = false;
    this.#done.clear();
    this.#held = 0;
    this.#stats.dropped += dropped;
    return dropped;
  }

  #ackHeld(): void {
    for (const [tag, state] of this.#done) {
      if (state !== ACK) continue;
      if (!this.#send(() => this.#channel.ack(message(tag), false))) return;
      this.#done.set(tag, SETTLED);
      this.#held--;
      this.#acked(tag, false, 1);
    }
  }

  #acked(tag: number, multiple: boolean, count: number): void {
    this.#stats.acked += count;
    this.#stats.ackFrames++;
    if (rabbitmqChannels.ack.hasSubscribers) rabbitmqChannels.ack.publish({ queue: this.queue, deliveryTag: tag, multiple, count });
  }

  // amqplib throws synchronously once the channel is closed; the close handler kills the ledger
  // soon after, and the broker redelivers what we could not ack.
  #send(frame: () => void): boolean {
    try {
      frame();
      return true;
    } catch {
      this.kill();
      return false;
    }
  }
}

/** amqplib's ack/reject read only `fields.deliveryTag`. */
function message(deliveryTag: number): Message {
  return { fields: { deliveryTag } } as unknown as Message;
}
