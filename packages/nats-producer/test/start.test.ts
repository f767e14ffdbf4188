// What `init` (so Pipeline.start) checks against the real server before anything runs.
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { Pipeline } from '@throughway/core';
import { NatsJetStreamProducer, natsJetStream } from '@throughway/nats-producer';
import { AckPolicy } from '@nats-io/jetstream';
import { FIXTURES, nats, SERVER, testStream, type TestStream } from './helpers.js';

const controller = { push() {}, pipelineName: 'start-test', index: 0, hasTransformer: false };

let stream: TestStream | undefined;
afterEach(async () => {
  await stream?.delete();
  stream = undefined;
});

async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return { code: (error as { code?: string }).code, message: (error as Error).message };
  }
  throw new Error('expected a rejection');
}

describe('start-up checks', () => {
  test('a server that does not answer fails Pipeline.start with ERR_THROUGHWAY_NATS_CONNECT', async () => {
    // A port that was just free: nothing listens on it.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const started = Pipeline.start({
      name: 'nats-no-server',
      handlers: new URL('outcome-handlers.mjs', `file://${FIXTURES}`),
      producer: { module: natsJetStream({ servers: `127.0.0.1:${port}`, stream: 'S', consumer: 'C' }) },
      processors: { default: { runtime: 'inline' } },
    });
    expect(await rejection(started)).toMatchObject({ code: 'ERR_THROUGHWAY_NATS_CONNECT', message: expect.stringContaining(`127.0.0.1:${port}`) });
  });

  test('a consumer that does not exist is ERR_THROUGHWAY_NATS_CONSUMER, naming it', async () => {
    stream = await testStream();
    const producer = new NatsJetStreamProducer({ servers: SERVER, stream: stream.name, consumer: 'nobody' });
    expect(await rejection(producer.init(controller))).toMatchObject({ code: 'ERR_THROUGHWAY_NATS_CONSUMER', message: expect.stringContaining(`consumer nobody of stream ${stream.name}`) });
  });

  test('a consumer without explicit acks, or a push consumer, is refused', async () => {
    stream = await testStream();
    const { jsm } = await nats();
    await jsm.consumers.add(stream.name, { durable_name: 'acknone', ack_policy: AckPolicy.None });
    await jsm.consumers.add(stream.name, { durable_name: 'pushed', ack_policy: AckPolicy.Explicit, deliver_subject: `${stream.name}_deliver` });
    const none = new NatsJetStreamProducer({ servers: SERVER, stream: stream.name, consumer: 'acknone' });
    expect(await rejection(none.init(controller))).toMatchObject({ code: 'ERR_THROUGHWAY_NATS_CONSUMER', message: expect.stringContaining("ack_policy none; this producer needs 'explicit'") });
    const push = new NatsJetStreamProducer({ servers: SERVER, stream: stream.name, consumer: 'pushed' });
    expect(await rejection(push.init(controller))).toMatchObject({ code: 'ERR_THROUGHWAY_NATS_CONSUMER', message: expect.stringContaining('push consumer') });
  });

  test('declare creates the durable consumer with explicit acks, and updates it on the next start', async () => {
    stream = await testStream();
    const { jsm } = await nats();
    const first = new NatsJetStreamProducer({ servers: SERVER, stream: stream.name, consumer: 'declared', declare: { max_deliver: 4, ack_wait: 5e9 } });
    await first.init(controller);
    await first.terminate();
    expect((await jsm.consumers.info(stream.name, 'declared')).config).toMatchObject({ durable_name: 'declared', ack_policy: 'explicit', max_deliver: 4, ack_wait: 5e9 });
    const second = new NatsJetStreamProducer({ servers: SERVER, stream: stream.name, consumer: 'declared', declare: { max_deliver: 7 } });
    await second.init(controller);
    await second.terminate();
    expect((await jsm.consumers.info(stream.name, 'declared')).config).toMatchObject({ max_deliver: 7 });
    expect(first.connection!.isClosed()).toBe(true);
  });
});
