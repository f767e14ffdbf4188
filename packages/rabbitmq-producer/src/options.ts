import type { Topology } from '@throughway/core';
import { invalidOption as invalid, onlyKeys, plainObject } from '@throughway/workers/internal';
import { METADATA_KEYS, type MetadataKey } from './metadata.js';

/** What a failed message does at the broker. */
export type OnFailure = 'reject' | 'requeue' | 'requeue_once';

/** Reconnect delays: `type` 'rand_exp' (default) grows about ×3 per attempt with jitter, 'exp' doubles, 'rand' is uniform in [minMs, maxMs]. */
export interface BackoffOptions {
  /** Delay before the first reconnect attempt. Default 1000 ms. Range 0–3,600,000. */
  minMs?: number;
  /** Cap of the delay. Default 30000 ms. Range minMs–3,600,000. */
  maxMs?: number;
  /** Default 'rand_exp'. */
  type?: 'rand_exp' | 'exp' | 'rand';
}

/** A binding of the queue to an exchange, made (idempotently) at every connect. */
export interface Binding {
  exchange: string;
  /** Default ''. */
  routingKey?: string;
  arguments?: Record<string, unknown>;
}

/** How the queue is declared at every connect (absent: the queue must exist). */
export interface DeclareOptions {
  /** Default true. */
  durable?: boolean;
  /** Default false. */
  exclusive?: boolean;
  /** Default false. */
  autoDelete?: boolean;
  /** Queue arguments: `{ 'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'dlx' }`, ... */
  arguments?: Record<string, unknown>;
}

/** Options of {@link rabbitmqQueue}. */
export interface RabbitmqQueueOptions {
  /** `amqp://` or `amqps://` URL, or several: each connect tries them in turn, starting after the last one that failed. */
  url: string | string[];
  /** The queue to consume. */
  queue: string;
  declare?: DeclareOptions;
  bindings?: Binding[];
  /**
   * Unacked messages the broker may hand this producer (basic.qos, per consumer). Default:
   * derived from the pipeline, enough for every processor's demand and every batcher's room
   * (see the README), at least 50. Range 1–65535.
   */
  prefetch?: number;
  /** What a successful message does. Only 'ack'. */
  onSuccess?: 'ack';
  /** What a failed message does; per message through `Message.configureAck(m, { onFailure })`. Default 'reject'. */
  onFailure?: OnFailure;
  /** Which AMQP fields and properties to copy into `message.metadata`. Default none. */
  metadata?: MetadataKey[];
  /** How the body reaches the handler: 'bytes' (a Uint8Array of its own) or 'string' (UTF-8). Default 'bytes'. */
  body?: 'bytes' | 'string';
  backoff?: BackoffOptions;
  /** Name of the connection as the broker lists it. Default `throughway:<pipeline>:<index>:<host>:<pid>:<random>`. */
  connectionName?: string;
  /** AMQP heartbeat in seconds (0 turns it off). Default: the broker's (60). Range 0–3600. */
  heartbeat?: number;
  /** Called once per connection failure (not per message). Default: a process warning. */
  onError?: (error: unknown) => void;
}

export interface ResolvedBackoff {
  minMs: number;
  maxMs: number;
  type: 'rand_exp' | 'exp' | 'rand';
}

export interface ResolvedOptions {
  urls: string[];
  queue: string;
  declare: Required<Omit<DeclareOptions, 'arguments'>> & { arguments: Record<string, unknown> } | null;
  bindings: Required<Binding>[];
  prefetch: number | undefined;
  onSuccess: 'ack';
  onFailure: OnFailure;
  metadata: MetadataKey[];
  body: 'bytes' | 'string';
  backoff: ResolvedBackoff;
  connectionName: string | undefined;
  heartbeat: number | undefined;
  onError: (error: unknown) => void;
}

const KEYS = ['url', 'queue', 'declare', 'bindings', 'prefetch', 'onSuccess', 'onFailure', 'metadata', 'body', 'backoff', 'connectionName', 'heartbeat', 'onError'];
export const ON_FAILURE: readonly OnFailure[] = ['reject', 'requeue', 'requeue_once'];
const MAX_PREFETCH = 65_535; // basic.qos prefetch-count is a 16-bit field
const MAX_DELAY_MS = 3_600_000;

function shortString(path: string, value: unknown, allowEmpty: boolean): string {
  // AMQP short strings (queue, exchange and routing-key names) are at most 255 bytes.
  if (typeof value !== 'string' || (!allowEmpty && value === '') || Buffer.byteLength(value) > 255) {
    invalid(path, `a${allowEmpty ? '' : ' non-empty'} string of at most 255 bytes`, value);
  }
  return value;
}

function bool(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(path, 'a boolean', value);
  return value;
}

function table(path: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  return plainObject(path, value);
}

function ranged(path: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) invalid(path, `an integer from ${min} to ${max}`, value);
  return value;
}

function urls(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) invalid('rabbitmqQueue.url', 'an amqp:// URL or a non-empty list of them', value);
  return list.map((u, i) => {
    const path = Array.isArray(value) ? `rabbitmqQueue.url[${i}]` : 'rabbitmqQueue.url';
    let parsed: URL | undefined;
    try {
      parsed = typeof u === 'string' ? new URL(u) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:')) invalid(path, 'an amqp:// or amqps:// URL', u);
    return u as string;
  });
}

function declareFrom(value: unknown): ResolvedOptions['declare'] {
  if (value === undefined) return null;
  const d = plainObject('rabbitmqQueue.declare', value);
  onlyKeys('rabbitmqQueue.declare', d, ['durable', 'exclusive', 'autoDelete', 'arguments']);
  return {
    durable: bool('rabbitmqQueue.declare.durable', d.durable, true),
    exclusive: bool('rabbitmqQueue.declare.exclusive', d.exclusive, false),
    autoDelete: bool('rabbitmqQueue.declare.autoDelete', d.autoDelete, false),
    arguments: table('rabbitmqQueue.declare.arguments', d.arguments),
  };
}

function bindingsFrom(value: unknown): Required<Binding>[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid('rabbitmqQueue.bindings', 'a list of { exchange, routingKey?, arguments? }', value);
  return value.map((b, i) => {
    const path = `rabbitmqQueue.bindings[${i}]`;
    const o = plainObject(path, b);
    onlyKeys(path, o, ['exchange', 'routingKey', 'arguments']);
    return {
      exchange: shortString(`${path}.exchange`, o.exchange, false),
      routingKey: o.routingKey === undefined ? '' : shortString(`${path}.routingKey`, o.routingKey, true),
      arguments: table(`${path}.arguments`, o.arguments),
    };
  });
}

function backoffFrom(value: unknown): ResolvedBackoff {
  if (value === undefined) return { minMs: 1000, maxMs: 30_000, type: 'rand_exp' };
  const b = plainObject('rabbitmqQueue.backoff', value);
  onlyKeys('rabbitmqQueue.backoff', b, ['minMs', 'maxMs', 'type']);
  const minMs = ranged('rabbitmqQueue.backoff.minMs', b.minMs, 1000, 0, MAX_DELAY_MS);
  const maxMs = ranged('rabbitmqQueue.backoff.maxMs', b.maxMs, Math.max(30_000, minMs), minMs, MAX_DELAY_MS);
  const type = b.type ?? 'rand_exp';
  if (type !== 'rand_exp' && type !== 'exp' && type !== 'rand') invalid('rabbitmqQueue.backoff.type', "'rand_exp', 'exp' or 'rand'", b.type);
  return { minMs, maxMs, type };
}

function metadataFrom(value: unknown): MetadataKey[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid('rabbitmqQueue.metadata', `a list of field names (${METADATA_KEYS.join(', ')})`, value);
  return value.map((k, i) => {
    if (!(METADATA_KEYS as readonly unknown[]).includes(k)) invalid(`rabbitmqQueue.metadata[${i}]`, `one of ${METADATA_KEYS.join(', ')}`, k);
    return k as MetadataKey;
  });
}

/** Checks a per-message `onFailure` (from `configureAck` or the options). */
export function checkOnFailure(path: string, value: unknown): OnFailure {
  if (!(ON_FAILURE as readonly unknown[]).includes(value)) invalid(path, "'reject', 'requeue' or 'requeue_once'", value);
  return value as OnFailure;
}

function warn(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(`@throughway/rabbitmq-producer: ${message}`, { code: 'THROUGHWAY_RABBITMQ_PRODUCER' });
}

/** Checks the options of `rabbitmqQueue` and fills in the defaults. Nothing connects here. */
export function resolveOptions(input: unknown): ResolvedOptions {
  const o = plainObject('rabbitmqQueue', input);
  onlyKeys('rabbitmqQueue', o, KEYS);
  if (o.onSuccess !== undefined && o.onSuccess !== 'ack') invalid('rabbitmqQueue.onSuccess', "'ack'", o.onSuccess);
  if (o.body !== undefined && o.body !== 'bytes' && o.body !== 'string') invalid('rabbitmqQueue.body', "'bytes' or 'string'", o.body);
  if (o.onError !== undefined && typeof o.onError !== 'function') invalid('rabbitmqQueue.onError', 'a function', o.onError);
  return {
    urls: urls(o.url),
    queue: shortString('rabbitmqQueue.queue', o.queue, false),
    declare: declareFrom(o.declare),
    bindings: bindingsFrom(o.bindings),
    prefetch: o.prefetch === undefined ? undefined : ranged('rabbitmqQueue.prefetch', o.prefetch, 0, 1, MAX_PREFETCH),
    onSuccess: 'ack',
    onFailure: o.onFailure === undefined ? 'reject' : checkOnFailure('rabbitmqQueue.onFailure', o.onFailure),
    metadata: metadataFrom(o.metadata),
    body: (o.body as 'bytes' | 'string' | undefined) ?? 'bytes',
    backoff: backoffFrom(o.backoff),
    connectionName: o.connectionName === undefined ? undefined : shortString('rabbitmqQueue.connectionName', o.connectionName, false),
    heartbeat: o.heartbeat === undefined ? undefined : ranged('rabbitmqQueue.heartbeat', o.heartbeat, 0, 0, 3600),
    onError: (o.onError as ResolvedOptions['onError'] | undefined) ?? warn,
  };
}

/** The prefetch used when none is given and the pipeline's topology is unknown (Broadway's default). */
export const FALLBACK_PREFETCH = 50;

/**
 * The default prefetch: what the pipeline can hold at once, so that no processor waits for
 * messages the broker withholds and a batch can fill before its timeout. Each processor slot
 * holds up to `maxDemand` (twice that on threads, which keep two tasks in flight); each batcher
 * up to its own demand plus two batches per slot (one forming, one being written), as the
 * batcher stage bounds it.
 *
 * @example
 * derivePrefetch({ producers: [...], processors: [{ concurrency: 2, maxDemand: 10, runtime: 'inline', ... }], batchers: [{ concurrency: 1, batchSize: 100, ... }] }) // 2*10 + 100 + 200 = 320
 */
export function derivePrefetch(topology: Topology | undefined): number {
  if (!topology) return FALLBACK_PREFETCH;
  let total = 0;
  for (const p of topology.processors) total += p.concurrency * p.maxDemand * (p.runtime === 'threads' ? 2 : 1);
  for (const b of topology.batchers) total += b.batchSize + b.concurrency * b.batchSize * 2;
  return Math.max(FALLBACK_PREFETCH, Math.min(MAX_PREFETCH, total));
}
