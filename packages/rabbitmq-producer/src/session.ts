import amqplib, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { ThroughwayError } from '@throughway/workers';
import { ChannelLedger, type RabbitmqStats } from './ledger.js';
import type { ResolvedOptions } from './options.js';

/** One connection, its one channel, the consumer on it, and the channel's delivery tags. */
export interface Session {
  connection: ChannelModel;
  channel: Channel;
  ledger: ChannelLedger;
  consumerTag: string;
  url: string;
  /** Set once the connection, channel or consumer is gone. */
  lost: boolean;
}

export interface SessionHandlers {
  /** A message from the consumer (never `null`: a broker-side cancel comes through `onLost`). */
  onMessage(session: Session, message: ConsumeMessage): void;
  /** The connection, the channel or the consumer is gone; called at most once per session. */
  onLost(session: Session, reason: string): void;
}

/** `amqp://user:***@host:port/vhost`: URLs go into errors and telemetry without their password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an invalid URL)';
  }
}

function withHeartbeat(url: string, heartbeat: number | undefined): string {
  if (heartbeat === undefined) return url;
  const u = new URL(url);
  u.searchParams.set('heartbeat', String(heartbeat));
  return u.toString();
}

/**
 * Connects to `url`, opens a channel, sets the prefetch, declares and binds the queue as the
 * options say, and starts consuming. On any failure the connection it opened is closed and
 * the error is rethrown as `ERR_THROUGHWAY_RABBITMQ_CONNECT` (could not connect) or
 * `ERR_THROUGHWAY_RABBITMQ_SETUP` (connected, but the broker refused a declare, bind or consume).
 */
export async function openSession(url: string, o: ResolvedOptions, prefetch: number, connectionName: string, stats: RabbitmqStats, handlers: SessionHandlers): Promise<Session> {
  let connection: ChannelModel;
  try {
    connection = await amqplib.connect(withHeartbeat(url, o.heartbeat), { clientProperties: { connection_name: connectionName }, timeout: 10_000 });
  } catch (error) {
    throw new ThroughwayError('ERR_THROUGHWAY_RABBITMQ_CONNECT', `could not connect to ${redact(url)}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  // Until the session is handed over, an error event must not go unhandled (it would end the process).
  const early = () => undefined;
  connection.on('error', early);
  try {
    const channel = await connection.createChannel();
    channel.on('error', early);
    await channel.prefetch(prefetch, false);
    if (o.declare) {
      const d = o.declare;
      await channel.assertQueue(o.queue, { durable: d.durable, exclusive: d.exclusive, autoDelete: d.autoDelete, arguments: d.arguments });
    }
    for (const b of o.bindings) await channel.bindQueue(o.queue, b.exchange, b.routingKey, b.arguments);
    // The ledger exists before consume: deliveries may arrive before consume-ok does.
    const ledger = new ChannelLedger(channel, { queue: o.queue, prefetch, onFailure: o.onFailure }, stats);
    const session: Session = { connection, channel, ledger, consumerTag: '', url, lost: false };
    const lose = (reason: string) => {
      if (session.lost) return;
      session.lost = true;
      handlers.onLost(session, reason);
    };
    connection.on('close', (error?: Error) => lose(error ? `connection closed: ${error.message}` : 'connection closed'));
    connection.on('error', (error: Error) => lose(`connection error: ${error.message}`));
    channel.on('close', () => lose('channel closed'));
    channel.on('error', (error: Error) => lose(`channel error: ${error.message}`));
    const { consumerTag } = await channel.consume(
      o.queue,
      (message) => {
        // amqplib passes null when the broker cancels the consumer (the queue was deleted, say).
        if (message === null) lose('the broker cancelled the consumer');
        else if (!session.lost) handlers.onMessage(session, message);
      },
      { noAck: false },
    );
    session.consumerTag = consumerTag;
    connection.off('error', early);
    channel.off('error', early);
    return session;
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw new ThroughwayError('ERR_THROUGHWAY_RABBITMQ_SETUP', `connected to ${redact(url)}, but setting up queue ${JSON.stringify(o.queue)} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
}

/** Closes a session's channel, then its connection; never throws. */
export async function closeSession(session: Session): Promise<void> {
  // The channel first: amqplib writes each channel's frames through its own stream, so a
  // connection.close could overtake acks still queued on the channel and the broker would
  // requeue what we had acked.
  try {
    if (!session.lost) await session.channel.close();
  } catch {
    // Already closing: the connection close below ends it.
  }
  try {
    await session.connection.close();
  } catch {
    // Already closed, or the socket is gone: either way there is nothing left to release.
  }
}
