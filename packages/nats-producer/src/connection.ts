import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstreamManager, type ConsumerInfo, type JetStreamManager } from '@nats-io/jetstream';
import { ThroughwayError } from '@throughway/workers';
import type { ResolvedOptions } from './options.js';

/** A connection that reconnects forever with the `backoff` delays (attempts counted from the last success). */
export interface Connection {
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** Call on a successful reconnect: the next outage starts again from the shortest delay. */
  resetBackoff(): void;
}

/**
 * Opens the producer's connection. The first connect is tried once per server (a wrong address
 * fails `Pipeline.start` at once); after that the client reconnects for ever, waiting
 * `backoff(attempt)` with up to 20% jitter between attempts, and resubscribes by itself.
 */
export async function openConnection(o: ResolvedOptions): Promise<Connection> {
  let attempt = 0;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: o.servers,
      name: o.name,
      ...o.auth,
      maxReconnectAttempts: -1,
      reconnectJitter: 0,
      reconnectDelayHandler: () => {
        const ms = o.backoff(++attempt);
        return Math.round(ms * (0.8 + Math.random() * 0.2));
      },
      // A half-open TCP connection (a cut cable, a dead proxy) is noticed after ~30 s, not 4 min.
      pingInterval: 10_000,
      maxPingOut: 3,
    });
  } catch (error) {
    throw new ThroughwayError('ERR_THROUGHWAY_NATS_CONNECT', `could not connect to NATS at ${o.servers.join(', ')}: ${(error as Error)?.message ?? error}`, { cause: error });
  }
  try {
    const jsm = await jetstreamManager(nc);
    return { nc, jsm, resetBackoff: () => (attempt = 0) };
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw new ThroughwayError('ERR_THROUGHWAY_NATS_CONNECT', `NATS at ${o.servers.join(', ')} has no JetStream for this account: ${(error as Error)?.message ?? error}`, { cause: error });
  }
}

/**
 * Creates or updates the durable consumer when `declare` is given, then checks it is one this
 * producer can use: a pull consumer with explicit acks.
 */
export async function ensureConsumer(jsm: JetStreamManager, o: ResolvedOptions): Promise<ConsumerInfo> {
  const where = `consumer ${o.consumer} of stream ${o.stream}`;
  let info: ConsumerInfo | undefined;
  try {
    info = await jsm.consumers.info(o.stream, o.consumer);
  } catch (error) {
    if (!o.declare) throw new ThroughwayError('ERR_THROUGHWAY_NATS_CONSUMER', `${where}: ${(error as Error)?.message ?? error} (create it, or pass \`declare\`)`, { cause: error });
  }
  if (o.declare) {
    const config = { ...o.declare, durable_name: o.consumer, ack_policy: AckPolicy.Explicit };
    try {
      info = info ? await jsm.consumers.update(o.stream, o.consumer, config) : await jsm.consumers.add(o.stream, config);
    } catch (error) {
      throw new ThroughwayError('ERR_THROUGHWAY_NATS_CONSUMER', `could not declare ${where}: ${(error as Error)?.message ?? error}`, { cause: error });
    }
  }
  const config = info!.config;
  if (config.deliver_subject) throw new ThroughwayError('ERR_THROUGHWAY_NATS_CONSUMER', `${where} is a push consumer (deliver_subject ${config.deliver_subject}); this producer needs a pull consumer`);
  if (config.ack_policy !== AckPolicy.Explicit) throw new ThroughwayError('ERR_THROUGHWAY_NATS_CONSUMER', `${where} has ack_policy ${config.ack_policy}; this producer needs 'explicit' (each message acked after its work is done)`);
  return info!;
}
