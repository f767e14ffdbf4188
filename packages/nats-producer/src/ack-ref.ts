import type { Msg, MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { headers as newHeaders } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { MessageStatus, ThroughwayMessage } from '@throughway/core';
import { ThroughwayError } from '@throughway/workers';
import type { DeliveryInfo } from './delivery.js';
import type { BackoffFunction } from './options.js';
import { natsChannel } from './telemetry.js';

/** Counters of one NATS producer. */
export interface NatsStats {
  /** Messages delivered by the server (emitted or still buffered). */
  received: number;
  /** Successful messages acked (`+ACK`). */
  acked: number;
  /** Failed messages naked with a delay, to be delivered again. */
  naked: number;
  /** Messages terminated (`+TERM`): failures past `maxDeliver`, `retry: false`, `onFailure: 'term'`. */
  terminated: number;
  /** Terminated messages published to the dead-letter subject first. */
  deadLettered: number;
  /** `working()` (`+WPI`) renewals sent for messages held long. */
  renewed: number;
  /** Messages given back unprocessed (`-NAK` without delay) when the producer drained. */
  released: number;
  /** Reconnects of the producer's connection. */
  reconnects: number;
  /** Failures nobody asked for: publishes that threw, dead-letter publishes that failed, refused pull requests. */
  errors: number;
}

/** What a NATS message carries for its acknowledger (`message.acknowledger.data`). */
export interface NatsAckData {
  /** Where the producer keeps the delivery (its ack subject) until the ack. */
  seq: number;
  /** Set by `Message.configureAck(m, { retry: false })` (or `{ onFailure: 'term' }`). */
  retry?: boolean;
}

interface InFlight {
  reply: string;
  deliveryCount: number;
  subject: string;
  streamSequence: number;
  /** Last time the server heard of it (delivery or `+WPI`). */
  at: number;
  headers: MsgHdrs | undefined;
}

const ACK = new TextEncoder().encode('+ACK');
const TERM = new TextEncoder().encode('+TERM');
const WPI = new TextEncoder().encode('+WPI');
const NAK = new TextEncoder().encode('-NAK');

/**
 * The acknowledger's per-producer state (the `ref` of every message a producer emits): each
 * delivery's ack subject from arrival to ack, and the connection to answer on.
 *
 * JetStream acks one message per protocol message; there is no cumulative ack. They are
 * published without waiting for a reply, and the client writes everything published in one
 * tick as one socket write, so a batch of 100 acks costs one write. A JetStream ack names the
 * stream sequence, not the connection, so acks of messages delivered before a reconnect are
 * still valid and are sent on the new connection (the client buffers them while it is down);
 * if the server redelivered meanwhile, the message is processed twice, never lost.
 *
 * Messages held longer than `renewAt` × `ack_wait` get `+WPI` (working), so a slow batch does
 * not have them redelivered to another consumer behind its back.
 */
export class NatsAckRef {
  readonly stats: NatsStats;
  #nc: NatsConnection;
  #js: JetStreamClient;
  #inFlight = new Map<number, InFlight>();
  #next = 0;
  #o: AckRefOptions;
  #renewTimer: NodeJS.Timeout;
  #publishes = new Set<Promise<void>>();
  #closed = false;
  #failing = new Set<string>();

  constructor(nc: NatsConnection, js: JetStreamClient, stats: NatsStats, options: AckRefOptions) {
    this.#nc = nc;
    this.#js = js;
    this.stats = stats;
    this.#o = options;
    const every = Math.max(50, Math.floor((options.ackWaitMs * options.renewAt) / 2));
    this.#renewTimer = setInterval(() => this.renew(Date.now()), every);
    this.#renewTimer.unref();
  }

  /** Deliveries held: received and not yet acked, naked or terminated. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Registers a delivery; returns the `seq` for its ack data. */
  track(msg: Msg, info: DeliveryInfo): number {
    const seq = ++this.#next;
    this.#inFlight.set(seq, {
      reply: msg.reply!,
      deliveryCount: info.deliveryCount,
      subject: msg.subject,
      streamSequence: info.streamSequence,
      at: Date.now(),
      headers: this.#o.deadLetter ? msg.headers : undefined,
    });
    return seq;
  }

  /** Acks the successful, naks or terminates the failed. Resolves once dead-letter publishes are confirmed. */
  add(successful: readonly ThroughwayMessage[], failed: readonly ThroughwayMessage[]): void | Promise<void> {
    let acked = 0;
    let naked = 0;
    let terminated = 0;
    let waits: Promise<void>[] | undefined;
    for (const m of successful) {
      const entry = this.#take(m);
      if (entry && this.#send(entry.reply, ACK)) acked++;
    }
    for (const m of failed) {
      const data = m.acknowledger?.data as NatsAckData | undefined;
      const entry = this.#take(m);
      if (!entry) continue;
      const retry = data?.retry ?? this.#o.onFailure === 'retry';
      if (retry && entry.deliveryCount < this.#o.maxDeliver) {
        const delayNs = Math.round(this.#o.retryBackoff(entry.deliveryCount) * 1e6);
        if (this.#send(entry.reply, delayNs > 0 ? `-NAK {"delay":${delayNs}}` : NAK)) naked++;
      } else if (this.#o.deadLetter) {
        (waits ??= []).push(this.#deadLetter(entry, m));
      } else if (this.#send(entry.reply, TERM)) terminated++;
    }
    this.stats.acked += acked;
    this.stats.naked += naked;
    this.stats.terminated += terminated;
    if (natsChannel.hasSubscribers) natsChannel.publish({ type: 'ack', stream: this.#o.stream, consumer: this.#o.consumer, acked, naked, terminated, deadLettering: waits?.length ?? 0 });
    if (waits) return Promise.all(waits).then(() => undefined);
  }

  /** Gives deliveries back at once (`-NAK`, no delay): messages a draining producer will not emit. */
  release(seqs: readonly number[]): void {
    for (const seq of seqs) {
      const entry = this.#inFlight.get(seq);
      if (!entry) continue;
      this.#inFlight.delete(seq);
      if (this.#send(entry.reply, NAK)) this.stats.released++;
    }
  }

  /** Sends `+WPI` for deliveries held longer than `renewAt` × `ack_wait`. */
  renew(now: number): void {
    if (this.#closed) return;
    const threshold = this.#o.ackWaitMs * this.#o.renewAt;
    // Entries are in order of their last renewal: stop at the first one young enough.
    for (const [seq, entry] of this.#inFlight) {
      if (now - entry.at < threshold) break;
      if (!this.#send(entry.reply, WPI)) return;
      entry.at = now;
      this.#inFlight.delete(seq);
      this.#inFlight.set(seq, entry);
      this.stats.renewed++;
    }
  }

  /** Waits for dead-letter publishes under way, stops renewals; later acks are dropped (their messages are redelivered). */
  async close(): Promise<void> {
    clearInterval(this.#renewTimer);
    while (this.#publishes.size > 0) await Promise.allSettled([...this.#publishes]);
    this.#closed = true;
  }

  #take(m: ThroughwayMessage): InFlight | undefined {
    const seq = (m.acknowledger?.data as NatsAckData | undefined)?.seq;
    if (seq === undefined) return undefined;
    const entry = this.#inFlight.get(seq);
    if (entry) this.#inFlight.delete(seq);
    return entry;
  }

  #send(reply: string, body: Uint8Array | string): boolean {
    if (this.#closed) return false;
    try {
      this.#nc.publish(reply, body);
      this.#failing.delete('publish');
      return true;
    } catch (error) {
      // Only a closed connection refuses a publish; the message is redelivered after ack_wait.
      this.#failed(error, 'publish');
      return false;
    }
  }

  // Published through JetStream so that the dead letter is stored before the original is
  // terminated. If the publish fails the original is left unacked: the server delivers it again
  // after ack_wait while it has deliveries left, and it is dead-lettered then.
  #deadLetter(entry: InFlight, m: ThroughwayMessage): Promise<void> {
    const h = newHeaders();
    if (entry.headers) for (const [key, values] of entry.headers) for (const v of values) h.append(key, v);
    h.set('Throughway-Reason', failureReason(m.status));
    h.set('Throughway-Stream', this.#o.stream);
    h.set('Throughway-Subject', entry.subject);
    h.set('Throughway-Sequence', String(entry.streamSequence));
    h.set('Throughway-Deliveries', String(entry.deliveryCount));
    const data = m.data instanceof Uint8Array || typeof m.data === 'string' ? m.data : new Uint8Array(0);
    const publish = this.#js.publish(this.#o.deadLetter!.subject, data, { headers: h }).then(
      () => {
        this.#failing.delete('dead-letter');
        if (this.#send(entry.reply, TERM)) {
          this.stats.terminated++;
          this.stats.deadLettered++;
        }
      },
      (error) => this.#failed(new ThroughwayError('ERR_THROUGHWAY_NATS_DEAD_LETTER', `could not publish stream sequence ${entry.streamSequence} to the dead-letter subject ${this.#o.deadLetter!.subject} (${(error as Error)?.message ?? error}); it is left unacked`, { cause: error }), 'dead-letter'),
    );
    this.#publishes.add(publish);
    return publish.finally(() => this.#publishes.delete(publish));
  }

  // Counted every time, reported once per kind until it works again (not once per message).
  #failed(error: unknown, kind: 'publish' | 'dead-letter'): void {
    this.stats.errors++;
    if (this.#failing.has(kind)) return;
    this.#failing.add(kind);
    this.#o.onError(error);
  }
}

export interface AckRefOptions {
  stream: string;
  consumer: string;
  ackWaitMs: number;
  renewAt: number;
  maxDeliver: number;
  onFailure: 'retry' | 'term';
  retryBackoff: BackoffFunction;
  deadLetter: { subject: string } | undefined;
  /** Told of a failure (already counted in `stats.errors`). */
  onError: (error: unknown) => void;
}

/**
 * The reason a dead letter carries in `Throughway-Reason`: a string reason as it is, an error's
 * message, or anything else as JSON; one line, at most 1000 characters.
 */
export function failureReason(status: MessageStatus): string {
  let text: string;
  if (status.kind === 'failed') {
    const r = status.reason as { message?: unknown } | string;
    text = typeof r === 'string' ? r : typeof r?.message === 'string' ? r.message : safeJson(r);
  } else if (status.kind === 'error') {
    text = typeof status.error?.message === 'string' ? status.error.message : safeJson(status.error);
  } else text = 'failed';
  // Header values cannot hold line breaks.
  return text.replace(/[\r\n]+/g, ' ').slice(0, 1000);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
