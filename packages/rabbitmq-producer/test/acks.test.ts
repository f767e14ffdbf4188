// The ack bookkeeping against the real broker, with a producer driven by hand: one multiple ack
// per finished run of delivery tags, never over a tag still in flight; rejects one by one;
// held acks released past half the prefetch; acks on a dead channel dropped.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, test } from 'vitest';
import type { ProducerController, ThroughwayMessage } from '@throughway/core';
import { RabbitmqProducer, rabbitmqAcknowledger, type RabbitmqAckData } from '@throughway/rabbitmq-producer';
import { URL, closeConnectionByName, depth, publish, uniqueName, waitFor } from './helpers.js';

interface Recorded {
  acks: { deliveryTag: number; multiple: boolean; count: number }[];
  rejects: { deliveryTag: number; requeue: boolean }[];
}

function record(queue: string): Recorded & { stop(): void } {
  const acks: Recorded['acks'] = [];
  const rejects: Recorded['rejects'] = [];
  const onAck = (e: unknown) => {
    const { queue: q, ...rest } = e as { queue: string; deliveryTag: number; multiple: boolean; count: number };
    if (q === queue) acks.push(rest);
  };
  const onReject = (e: unknown) => {
    const { queue: q, ...rest } = e as { queue: string; deliveryTag: number; requeue: boolean };
    if (q === queue) rejects.push(rest);
  };
  subscribe('throughway:rabbitmq:ack', onAck);
  subscribe('throughway:rabbitmq:reject', onReject);
  return {
    acks,
    rejects,
    stop() {
      unsubscribe('throughway:rabbitmq:ack', onAck);
      unsubscribe('throughway:rabbitmq:reject', onReject);
    },
  };
}

function controller(): ProducerController & { pushed: ThroughwayMessage[] } {
  const pushed: ThroughwayMessage[] = [];
  return { pushed, push: (events) => pushed.push(...(events as ThroughwayMessage[])), pipelineName: 'acks-test', index: 0, hasTransformer: false };
}

const tag = (m: ThroughwayMessage) => (m.acknowledger!.data as RabbitmqAckData).deliveryTag;
const ack = (successful: ThroughwayMessage[], failed: ThroughwayMessage[] = []) => rabbitmqAcknowledger.ack((successful[0] ?? failed[0])!.acknowledger!.ref, successful, failed);
const failed = (m: ThroughwayMessage) => ({ ...m, status: { kind: 'failed' as const, reason: 'test' } });

const producers: RabbitmqProducer[] = [];
afterEach(async () => {
  for (const p of producers.splice(0)) await p.terminate();
});

async function consume(queue: string, count: number, options: { prefetch?: number } = {}) {
  const producer = new RabbitmqProducer({ url: URL, queue, declare: { durable: false }, prefetch: options.prefetch ?? 100 });
  producers.push(producer);
  const c = controller();
  await producer.init(c);
  await publish(queue, count);
  const messages: ThroughwayMessage[] = producer.handleDemand(count);
  const expected = Math.min(count, producer.prefetch);
  await waitFor(() => messages.length + c.pushed.length >= expected, `${expected} deliveries`);
  messages.push(...c.pushed);
  messages.sort((a, b) => tag(a) - tag(b));
  return { producer, messages };
}

describe('acks', () => {
  test('successes are acked with one multiple ack per finished run, never over a tag in flight; failures are rejected one by one', async () => {
    const queue = uniqueName('queue', 'acks');
    const rec = record(queue);
    try {
      const { producer, messages } = await consume(queue, 10);
      const m = (t: number) => messages[t - 1]!;
      expect(messages.map(tag)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

      ack([m(1), m(2), m(4)]); // 3 is still in flight: only 1..2 may be acked
      expect(rec.acks).toEqual([{ deliveryTag: 2, multiple: true, count: 2 }]);
      ack([m(3)]); // 3 and the held 4 form a run
      expect(rec.acks.at(-1)).toEqual({ deliveryTag: 4, multiple: true, count: 2 });
      ack([], [failed(m(5))]); // the default onFailure is 'reject'
      expect(rec.rejects).toEqual([{ deliveryTag: 5, requeue: false }]);
      ack([m(6), m(7), m(8), m(9), m(10)]); // 5 is settled by its reject: the run goes on to 10
      expect(rec.acks.at(-1)).toEqual({ deliveryTag: 10, multiple: true, count: 5 });
      expect(rec.acks).toHaveLength(3);

      expect(producer.stats()).toMatchObject({ delivered: 10, acked: 9, rejected: 1, requeued: 0, dropped: 0, ackFrames: 3 });
      await producer.terminate();
      expect(await depth(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
    } finally {
      rec.stop();
    }
  });

  test('requeue and requeue_once (per message through configure) put a failure back; requeue_once only on a first delivery', async () => {
    const queue = uniqueName('queue', 'requeue');
    const rec = record(queue);
    try {
      const { producer, messages } = await consume(queue, 3);
      const [a, b, c] = messages as [ThroughwayMessage, ThroughwayMessage, ThroughwayMessage];
      a.acknowledger!.data = rabbitmqAcknowledger.configure!(a.acknowledger!.ref, a.acknowledger!.data, { onFailure: 'requeue' });
      b.acknowledger!.data = rabbitmqAcknowledger.configure!(b.acknowledger!.ref, b.acknowledger!.data, { onFailure: 'requeue_once' });
      c.acknowledger!.data = { ...(c.acknowledger!.data as RabbitmqAckData), redelivered: true, onFailure: 'requeue_once' };
      ack([], [failed(a), failed(b), failed(c)]);
      expect(rec.rejects).toEqual([
        { deliveryTag: 1, requeue: true },
        { deliveryTag: 2, requeue: true },
        { deliveryTag: 3, requeue: false },
      ]);
      expect(() => rabbitmqAcknowledger.configure!(a.acknowledger!.ref, a.acknowledger!.data, { onFailure: 'retry' })).toThrow(
        expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('configureAck.onFailure') }),
      );
      expect(() => rabbitmqAcknowledger.configure!(a.acknowledger!.ref, a.acknowledger!.data, { retry: false })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION' }));
      // The two requeued come back to this consumer as redeliveries.
      await waitFor(() => producer.stats().delivered === 5, 'the two requeued messages redelivered');
      expect(producer.stats()).toMatchObject({ requeued: 2, rejected: 1 });
    } finally {
      rec.stop();
    }
  });

  test('a slow message does not stall the consumer: past half the prefetch, held acks go out one by one', async () => {
    const queue = uniqueName('queue', 'held');
    const rec = record(queue);
    try {
      const { producer, messages } = await consume(queue, 10, { prefetch: 8 });
      // prefetch 8: only 8 were delivered; 1 stays in flight, 2..5 finish (4 = half the prefetch).
      expect(messages.map(tag)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      ack([messages[1]!, messages[2]!, messages[3]!]);
      expect(rec.acks).toEqual([]);
      ack([messages[4]!]);
      expect(rec.acks).toEqual([2, 3, 4, 5].map((t) => ({ deliveryTag: t, multiple: false, count: 1 })));
      // The broker has room again and delivers 9 and 10.
      await waitFor(() => producer.stats().delivered === 10, 'two more deliveries');
      ack([messages[0]!, ...messages.slice(5)]);
      // 1 and 6..8 are the only ones still unacked in the run 1..8.
      expect(rec.acks.at(-1)).toEqual({ deliveryTag: 8, multiple: true, count: 4 });
    } finally {
      rec.stop();
    }
  });

  test('acks for messages of a connection that died are dropped, not sent on the new one; the broker redelivers them', async () => {
    const queue = uniqueName('queue', 'dead-channel');
    const rec = record(queue);
    try {
      const disconnects: unknown[] = [];
      const producer = new RabbitmqProducer({ url: URL, queue, declare: { durable: false }, prefetch: 10, backoff: { minMs: 10, maxMs: 50 }, onError: (e) => disconnects.push(e) });
      producers.push(producer);
      const c = controller();
      await producer.init(c);
      await publish(queue, 5);
      const first = producer.handleDemand(5);
      await waitFor(() => first.length + c.pushed.length === 5, 'five deliveries');
      const old = [...first, ...c.pushed.splice(0)];
      await closeConnectionByName(producer.connectionName);
      await waitFor(() => producer.stats().connects === 2, 'a reconnect');
      expect(producer.stats()).toMatchObject({ disconnects: 1, dropped: 5 });
      expect(disconnects).toEqual([expect.objectContaining({ code: 'ERR_THROUGHWAY_RABBITMQ_DISCONNECTED' })]);
      ack(old); // tags 1..5 of a dead channel: nothing is sent
      expect(rec.acks).toEqual([]);
      const again = producer.handleDemand(5);
      await waitFor(() => again.length + c.pushed.length === 5, 'five redeliveries');
      const redelivered = [...again, ...c.pushed];
      expect(redelivered.map(tag)).toEqual([1, 2, 3, 4, 5]);
      ack(redelivered);
      expect(rec.acks).toEqual([{ deliveryTag: 5, multiple: true, count: 5 }]);
      await producer.terminate();
      expect((await depth(queue)).messageCount).toBe(0);
    } finally {
      rec.stop();
    }
  });
});
