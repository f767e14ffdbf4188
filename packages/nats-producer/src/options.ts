import { describeValue, invalidOption as invalid, onlyKeys, plainObject } from '@throughway/workers/internal';
import type { ConsumerConfig } from '@nats-io/jetstream';

/**
 * Option checking for {@link natsJetStream}. Everything is checked before a connection opens;
 * an error names the option's path, the allowed range and the value received.
 */

/** A delay from a count (delivery count for retries, attempt number for reconnects). */
export type BackoffFunction = (count: number) => number;

/** `min(maxMs, minMs * 2 ** (n - 1))` (exponential), `minMs * n` (linear) or `minMs` (constant), capped at `maxMs`. */
export interface BackoffOptions {
  minMs?: number;
  maxMs?: number;
  type?: 'exponential' | 'linear' | 'constant';
}

/** Which delivery details to copy into `message.metadata`. */
export type MetadataKey = 'stream' | 'consumer' | 'subject' | 'sequence' | 'deliveryCount' | 'redelivered' | 'timestamp' | 'pending' | 'headers';
export const METADATA_KEYS: readonly MetadataKey[] = ['stream', 'consumer', 'subject', 'sequence', 'deliveryCount', 'redelivered', 'timestamp', 'pending', 'headers'];
const DEFAULT_METADATA: readonly MetadataKey[] = ['stream', 'subject', 'sequence', 'deliveryCount'];

/** Options of {@link natsJetStream}. */
export interface NatsJetStreamOptions {
  /** NATS server(s), `host:port` or `nats://host:port`; tried in turn on (re)connect. Default `'127.0.0.1:4222'`. */
  servers?: string | string[];
  /** The stream to read. */
  stream: string;
  /** The durable pull consumer to read through (every process of one pipeline names the same one). */
  consumer: string;
  /**
   * Create the durable consumer at start (or update it) with this configuration; `durable_name`
   * and `ack_policy: 'explicit'` are set for you. Without it the consumer must exist.
   */
  declare?: Partial<ConsumerConfig>;
  /** Messages pulled ahead of the pipeline's demand. Default `'auto'`: as many as the demand outstanding (at most 10,000). */
  prefetch?: number | 'auto';
  /** Largest single pull request. Default 1000. */
  maxPull?: number;
  /** How long a pull request waits at the server for messages. Default 30000 ms (1000–300000). */
  expiresMs?: number;
  /** A failed message: `'retry'` naks it with `retryBackoff` until `maxDeliver`, `'term'` ends it at once. Default `'retry'`. */
  onFailure?: 'retry' | 'term';
  /** The nak delay of a failed message, from its delivery count. Default `{ minMs: 1000, maxMs: 60000, type: 'exponential' }`. */
  retryBackoff?: BackoffOptions | BackoffFunction;
  /**
   * Deliveries after which a failed message is terminated (and dead-lettered) instead of naked.
   * Default: the consumer's `max_deliver` when it has one, else 5. Never above the consumer's.
   */
  maxDeliver?: number;
  /** Publish terminated failures to this subject (through JetStream, so a stream must capture it), with the reason in headers. */
  deadLetter?: { subject: string };
  /** Reconnect delay. Default `{ minMs: 250, maxMs: 5000, type: 'exponential' }`, with up to 20% jitter. */
  backoff?: BackoffOptions;
  /** `message.data`: the bytes as delivered (`'bytes'`, a Uint8Array of its own) or decoded as UTF-8 (`'string'`). Default `'bytes'`. */
  body?: 'bytes' | 'string';
  /** Delivery details in `message.metadata`: `true` (stream, subject, sequence, deliveryCount), `false`, or a list of keys. */
  metadata?: boolean | readonly MetadataKey[];
  /** Send `working()` for a message held longer than this fraction of the consumer's `ack_wait`. Default 0.5 (0.1–0.9). */
  renewAt?: number;
  /** Connection name shown by the server's monitoring. Default `throughway:<stream>:<consumer>`. */
  name?: string;
  /** Credentials, passed to the client as they are. */
  user?: string;
  pass?: string;
  token?: string;
  /** Called for failures the pipeline did not ask for (a lost connection, a failed dead-letter publish). Default: a process warning. */
  onError?: (error: unknown) => void;
}

export interface ResolvedOptions {
  servers: string[];
  stream: string;
  consumer: string;
  declare: Partial<ConsumerConfig> | undefined;
  prefetch: number | 'auto';
  maxPull: number;
  expiresMs: number;
  onFailure: 'retry' | 'term';
  retryBackoff: BackoffFunction;
  maxDeliver: number | undefined;
  deadLetter: { subject: string } | undefined;
  backoff: BackoffFunction;
  body: 'bytes' | 'string';
  metadata: readonly MetadataKey[];
  renewAt: number;
  name: string;
  auth: { user?: string; pass?: string; token?: string };
  onError: (error: unknown) => void;
}

const KEYS = ['servers', 'stream', 'consumer', 'declare', 'prefetch', 'maxPull', 'expiresMs', 'onFailure', 'retryBackoff', 'maxDeliver', 'deadLetter', 'backoff', 'body', 'metadata', 'renewAt', 'name', 'user', 'pass', 'token', 'onError'];
// JetStream names may not hold whitespace, '.', '*', '>', path separators or control characters.
const NAME = /^[^\s.*>/\\\x00-\x1f]{1,255}$/;
const SUBJECT = /^[^\s*>]+(\.[^\s*>]+)*$/;

/** An integer from `min` to `max`, or `fallback` when absent. */
export function intRange(path: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) invalid(path, `an integer from ${min} to ${max}`, value);
  return value;
}

function oneOf<T extends string>(path: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) invalid(path, allowed.map((a) => `'${a}'`).join(' or '), value);
  return value as T;
}

function text(path: string, value: unknown, pattern: RegExp, expected: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) invalid(path, expected, value);
  return value;
}

function optionalString(path: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') invalid(path, 'a non-empty string', value);
  return value;
}

/**
 * A backoff from options: the delay for count `n` (1 on the first failure or attempt).
 *
 * @example
 * backoffFunction({ minMs: 100, maxMs: 1000 })(3) // 400
 */
export function backoffFunction(options: BackoffOptions = {}, path = 'backoff', defaults = { minMs: 1000, maxMs: 60_000 }): BackoffFunction {
  const b = plainObject(path, options);
  onlyKeys(path, b, ['minMs', 'maxMs', 'type']);
  const minMs = intRange(`${path}.minMs`, b.minMs, defaults.minMs, 0, 86_400_000);
  const maxMs = intRange(`${path}.maxMs`, b.maxMs, Math.max(defaults.maxMs, minMs), minMs, 86_400_000);
  const type = oneOf(`${path}.type`, b.type, ['exponential', 'linear', 'constant'] as const, 'exponential');
  if (type === 'constant') return () => minMs;
  if (type === 'linear') return (n) => Math.min(maxMs, minMs * Math.max(1, n));
  return (n) => Math.min(maxMs, minMs * 2 ** Math.min(40, Math.max(0, n - 1)));
}

function retryBackoffFrom(value: unknown): BackoffFunction {
  if (typeof value === 'function') {
    const fn = value as BackoffFunction;
    // A delay that is not a finite non-negative number would make the nak invalid: use none.
    return (n) => {
      const ms = fn(n);
      return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.min(ms, 86_400_000) : 0;
    };
  }
  return backoffFunction(value as BackoffOptions | undefined, 'natsJetStream.retryBackoff');
}

function metadataFrom(value: unknown): readonly MetadataKey[] {
  if (value === undefined || value === true) return DEFAULT_METADATA;
  if (value === false) return [];
  if (!Array.isArray(value)) invalid('natsJetStream.metadata', `true, false or a list of ${METADATA_KEYS.join(', ')}`, value);
  value.forEach((k, i) => {
    if (!METADATA_KEYS.includes(k)) invalid(`natsJetStream.metadata[${i}]`, `one of ${METADATA_KEYS.join(', ')}`, k);
  });
  return [...new Set(value as MetadataKey[])];
}

function serversFrom(value: unknown): string[] {
  if (value === undefined) return ['127.0.0.1:4222'];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) invalid('natsJetStream.servers', 'a server address or a non-empty list of them', value);
  list.forEach((s, i) => {
    if (typeof s !== 'string' || !/^(nats|tls|ws|wss):\/\/\S+$|^[^\s/]+$/.test(s)) invalid(`natsJetStream.servers[${i}]`, "an address such as '127.0.0.1:4222' or 'nats://host:4222'", s);
  });
  return list as string[];
}

function warn(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(`@throughway/nats-producer: ${message}`, { code: 'THROUGHWAY_NATS_PRODUCER' });
}

/** Checks the options of `natsJetStream` and fills in the defaults. */
export function resolveOptions(input: unknown): ResolvedOptions {
  const o = plainObject('natsJetStream', input);
  onlyKeys('natsJetStream', o, KEYS);
  const stream = text('natsJetStream.stream', o.stream, NAME, 'a stream name (no whitespace, `.`, `*`, `>` or slashes)');
  const consumer = text('natsJetStream.consumer', o.consumer, NAME, 'a durable consumer name (no whitespace, `.`, `*`, `>` or slashes)');
  if (o.declare !== undefined) plainObject('natsJetStream.declare', o.declare);
  let prefetch: number | 'auto' = 'auto';
  if (o.prefetch !== undefined && o.prefetch !== 'auto') prefetch = intRange('natsJetStream.prefetch', o.prefetch, 0, 0, 100_000);
  let deadLetter: { subject: string } | undefined;
  if (o.deadLetter !== undefined) {
    const d = plainObject('natsJetStream.deadLetter', o.deadLetter);
    onlyKeys('natsJetStream.deadLetter', d, ['subject']);
    deadLetter = { subject: text('natsJetStream.deadLetter.subject', d.subject, SUBJECT, 'a subject without wildcards') };
  }
  if (o.backoff !== undefined && typeof o.backoff === 'function') invalid('natsJetStream.backoff', '{ minMs?, maxMs?, type? }', o.backoff);
  const renewAt = o.renewAt ?? 0.5;
  if (typeof renewAt !== 'number' || !(renewAt >= 0.1 && renewAt <= 0.9)) invalid('natsJetStream.renewAt', 'a number from 0.1 to 0.9', o.renewAt);
  if (o.onError !== undefined && typeof o.onError !== 'function') invalid('natsJetStream.onError', 'a function', o.onError);
  if (o.token !== undefined && (o.user !== undefined || o.pass !== undefined)) invalid('natsJetStream.token', 'absent when user/pass are given', o.token);
  return {
    servers: serversFrom(o.servers),
    stream,
    consumer,
    declare: o.declare as Partial<ConsumerConfig> | undefined,
    prefetch,
    maxPull: intRange('natsJetStream.maxPull', o.maxPull, 1000, 1, 100_000),
    expiresMs: intRange('natsJetStream.expiresMs', o.expiresMs, 30_000, 1000, 300_000),
    onFailure: oneOf('natsJetStream.onFailure', o.onFailure, ['retry', 'term'] as const, 'retry'),
    retryBackoff: retryBackoffFrom(o.retryBackoff),
    maxDeliver: o.maxDeliver === undefined ? undefined : intRange('natsJetStream.maxDeliver', o.maxDeliver, 5, 1, 1_000_000),
    deadLetter,
    backoff: backoffFunction(o.backoff as BackoffOptions | undefined, 'natsJetStream.backoff', { minMs: 250, maxMs: 5000 }),
    body: oneOf('natsJetStream.body', o.body, ['bytes', 'string'] as const, 'bytes'),
    metadata: metadataFrom(o.metadata),
    renewAt,
    name: optionalString('natsJetStream.name', o.name) ?? `throughway:${stream}:${consumer}`,
    auth: { user: optionalString('natsJetStream.user', o.user), pass: optionalString('natsJetStream.pass', o.pass), token: optionalString('natsJetStream.token', o.token) },
    onError: (o.onError as ((error: unknown) => void) | undefined) ?? warn,
  };
}

export { describeValue, invalid };
