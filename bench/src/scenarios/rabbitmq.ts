/**
 * The RabbitMQ producer's consume+ack rate: messages/s from a filled queue to an empty one through
 * a pipeline with a no-op handler and a batcher of 100, against a bare amqplib loop in the same run
 * (consume with the same prefetch, one `ack(multiple)` per 100 messages, no pipeline), so the ratio
 * is the cost of the pipeline: messages, demand, dispatch, threads, batching, acks.
 * Target: >= 0.8 of the bare loop.
 *
 * A round fills a fresh queue (not timed), then starts the consumer and times from the moment it
 * consumes (the producer's `connect` event: after the threads booted) to the last ack. Cases
 * alternate, order rotated each round, on the machine's shared broker; ranges are reported.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import amqplib, { type ChannelModel } from 'amqplib';
import { Pipeline } from '@throughway/core';
import { rabbitmqQueue, type RabbitmqQueueSource } from '@throughway/rabbitmq-producer';
import type { BenchResult, Scenario } from '../scenario.js';
import { fmtRate, gc, log, median, sleep } from '../harness/measure.js';

const NAME = 'rabbitmq';
const SCENARIO = 'rabbitmq consume+ack';
const URL = process.env.THROUGHWAY_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const handlers = new globalThis.URL('../fixtures/noop-handler.js', import.meta.url);
const TARGET = 0.8;
/** A bench queue left behind by a killed run deletes itself after 10 idle minutes. */
const EXPIRES = { 'x-expires': 600_000 };

interface Case {
  name: string;
  /** Consumes `count` messages from `queue`; resolves with the seconds from consuming to the last ack. */
  run(queue: string, count: number, prefetch: number): Promise<number>;
}

async function fill(admin: ChannelModel, queue: string, count: number): Promise<void> {
  const ch = await admin.createConfirmChannel();
  await ch.assertQueue(queue, { durable: false, arguments: EXPIRES });
  for (let i = 0; i < count; i++) {
    const body = Buffer.from(`{"order":${i},"customer":"cus_${i % 997}","amount":${100 + (i % 9000)}}`);
    if (!ch.sendToQueue(queue, body)) await new Promise((resolve) => ch.once('drain', resolve));
  }
  await ch.waitForConfirms();
  await ch.close();
}

/** What a user would write with amqplib and no pipeline: consume, ack every 100th with multiple. */
const bare: Case = {
  name: 'bare amqplib loop',
  async run(queue, count, prefetch) {
    const conn = await amqplib.connect(URL);
    const ch = await conn.createChannel();
    await ch.prefetch(prefetch);
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      let n = 0;
      void ch.consume(queue, (m) => {
        if (!m) return;
        n++;
        if (n % 100 === 0 || n === count) ch.ack(m, true);
        if (n === count) resolve();
      });
    });
    const seconds = (performance.now() - t0) / 1000;
    await ch.close();
    await conn.close();
    return seconds;
  },
};

function pipelineCase(runtime: 'threads' | 'inline', body: 'string' | 'bytes'): Case {
  return {
    name: `pipeline ${runtime}, body ${body}`,
    async run(queue, count, prefetch) {
      const source: RabbitmqQueueSource = rabbitmqQueue({ url: URL, queue, prefetch, body });
      let t0 = 0;
      const onConnect = (e: unknown) => {
        if ((e as { queue: string }).queue === queue) t0 = performance.now();
      };
      subscribe('throughway:rabbitmq:connect', onConnect);
      const pipeline = await Pipeline.start({
        name: `bench-rabbitmq-${runtime}`,
        handlers,
        producer: { module: source },
        processors: { default: { runtime, ...(runtime === 'threads' ? { concurrency: 1 } : { maxDemand: 100 }) } },
        batchers: { default: { batchSize: 100, batchTimeout: 100 } },
      });
      unsubscribe('throughway:rabbitmq:connect', onConnect);
      while (source.stats().acked < count) await sleep(1);
      const seconds = (performance.now() - t0) / 1000;
      await pipeline.stop();
      return seconds;
    },
  };
}

/** The prefetch the producer derives for this pipeline (threads, 1 processor, batcher of 100). */
async function derivedPrefetch(admin: ChannelModel, queue: string): Promise<number> {
  const ch = await admin.createChannel();
  await ch.assertQueue(queue, { durable: false, arguments: EXPIRES });
  await ch.close();
  const source = rabbitmqQueue({ url: URL, queue });
  const pipeline = await Pipeline.start({ name: 'bench-rabbitmq-prefetch', handlers, producer: { module: source }, processors: { default: { runtime: 'threads', concurrency: 1 } }, batchers: { default: { batchSize: 100 } } });
  const prefetch = source.producers[0]!.prefetch;
  await pipeline.stop();
  return prefetch;
}

const rabbitmq: Scenario = async ({ quick }) => {
  const count = quick ? 10_000 : 30_000;
  const rounds = quick ? 2 : 3;
  const admin = await amqplib.connect(URL);
  const queues: string[] = [];
  const name = () => {
    const q = `tw-bench-rabbitmq-${process.pid}-${queues.length}`;
    queues.push(q);
    return q;
  };
  try {
    const prefetch = await derivedPrefetch(admin, name());
    const cases = [bare, pipelineCase('threads', 'string'), pipelineCase('inline', 'string'), ...(quick ? [] : [pipelineCase('threads', 'bytes')])];
    const rates: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.name, []]));
    for (let r = -1; r < rounds; r++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + Math.max(r, 0)) % cases.length]!;
        const queue = name();
        await fill(admin, queue, count);
        gc();
        const seconds = await c.run(queue, count, prefetch);
        if (r >= 0) rates[c.name]!.push(count / seconds);
        log(NAME, `${r < 0 ? 'warm-up' : `round ${r + 1}`} ${c.name}: ${fmtRate(count / seconds)}`);
      }
    }
    const base = rates[bare.name]!;
    const range = (xs: number[]) => `${Math.round(Math.min(...xs)).toLocaleString('en-US')}–${Math.round(Math.max(...xs)).toLocaleString('en-US')}`;
    const results: BenchResult[] = [
      {
        scenario: SCENARIO,
        case: bare.name,
        value: Math.round(median(base)),
        unit: 'msg/s',
        note: `baseline: prefetch ${prefetch}, ack multiple every 100; range ${range(base)}; ${count.toLocaleString('en-US')} messages a round, ${rounds} rounds`,
      },
    ];
    for (const c of cases.slice(1)) {
      const xs = rates[c.name]!;
      const ratios = xs.map((x, i) => x / base[i]!);
      const ratio = median(ratios);
      results.push({
        scenario: SCENARIO,
        case: c.name,
        value: Math.round(median(xs)),
        unit: 'msg/s',
        baseline: { name: bare.name, value: Math.round(median(base)) },
        ratio,
        target: `>= ${TARGET} of the bare loop`,
        met: ratio >= TARGET,
        note: `no-op handler, batcher of 100, prefetch ${prefetch}; range ${range(xs)} msg/s, per-round ratios ${ratios.map((x) => x.toFixed(2)).join(', ')}`,
      });
    }
    return results;
  } finally {
    const ch = await admin.createChannel();
    for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
    await admin.close().catch(() => undefined);
  }
};

export default rabbitmq;
