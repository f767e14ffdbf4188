/**
 * What JetStream tells about a delivery, read from the message's reply (ack) subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>` (9 tokens), or with a
 * domain and account hash in front and a random token at the end (12 tokens, newer servers).
 * Reading it here rather than through the client's `JsMsg` saves an object per message.
 */
export interface DeliveryInfo {
  stream: string;
  consumer: string;
  /** 1 on the first delivery. */
  deliveryCount: number;
  /** The message's sequence in the stream. */
  streamSequence: number;
  /** The consumer's delivery sequence. */
  deliverySequence: number;
  /** When the message was stored, in nanoseconds since the epoch (as a string: it exceeds 2^53). */
  timestampNanos: string;
  /** Messages left for the consumer after this one. */
  pending: number;
}

/**
 * Parses an ack subject, or returns undefined when it is not one (a message that did not come
 * from a JetStream consumer).
 *
 * @example
 * parseAckSubject('$JS.ACK.orders.workers.1.42.42.1700000000000000000.0')?.streamSequence // 42
 */
export function parseAckSubject(reply: string | undefined): DeliveryInfo | undefined {
  if (!reply || !reply.startsWith('$JS.ACK.')) return undefined;
  const t = reply.split('.');
  let i: number;
  if (t.length === 9) i = 2;
  else if (t.length >= 11) i = 4;
  else return undefined;
  const deliveryCount = Number(t[i + 2]);
  const streamSequence = Number(t[i + 3]);
  if (!Number.isSafeInteger(deliveryCount) || !Number.isSafeInteger(streamSequence)) return undefined;
  return {
    stream: t[i]!,
    consumer: t[i + 1]!,
    deliveryCount,
    streamSequence,
    deliverySequence: Number(t[i + 4]),
    timestampNanos: t[i + 5]!,
    pending: Number(t[i + 6]),
  };
}
