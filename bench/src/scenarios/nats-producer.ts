/**
 * The NATS JetStream producer's consume+ack rate: messages/s from a filled stream to a consumer
 * with nothing pending, through a pipeline (no-op handler, a batcher of 100), against a bare
 * client loop in the same run: `consumer.consume({ max_messages: 100 })` with `m.ack()` per
 * message, what a user would write with the client alone. Target: >= 0.8 of the bare loop.
 * A second baseline shows what pipelining acks is worth: the same loop awaiting each ack's
 * confirmation (`await m.ackAck()`).
 *
 * Every round and case gets a fresh in-memory stream filled with N messages (not timed) and a
 * fresh durable consumer; the clock runs from the consumer's start (after `Pipeline.start`
 * resolves, so thread start-up is not counted) to the last ack, followed by a flush (a round
 * trip: the server has read every ack). Cases alternate, the order rotating each round; the
 * ratio is the median of per-round ratios, with its range.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, StorageType, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Pipeline, type ProcessorOptions } from '@throughway/core';
import { natsJetStream } from '@throughway/nats-producer';
import type { BenchResult, Scenario } from '../scenario.js';
import { fmtRate, gc, log, median, sleep } from '../harness/measure.js';

const NAME = 'nats-producer';
const SCENARIO = 'nats jetstream consume+ack';
const SERVER = process.env.THROUGHWAY_NATS ?? '127.0.0.1:4222';
const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);

interface Case {
  name: string;
  /** Messages a round (the awaited-ack loop gets fewer: it is an order of magnitude slower). */
  messages: number;
  /** Consumes `n` messages from the consumer; resolves after the last ack reached the server. */
  run(stream: string, consumer: string, n: number): Promise<void>;
}

async function fill(nc: NatsConnection, jsm: JetStreamManager, n: number): Promise<string> {
  const name = `bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.Memory });
  const body = new TextEncoder().encode('{"order":123456,"customer":"cus_42","amount":1999}');
  for (let i = 1; i <= n; i++) {
    nc.publish(`${name}.events`, body);
    if (i % 5000 === 0) await nc.flush();
  }
  await nc.flush();
  while ((await jsm.streams.info(name)).state.messages < n) await sleep(10);
  await jsm.consumers.add(name, { durable_name: 'bench', ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
  return name;
}

function bareCase(nc: NatsConnection, awaitAcks: boolean, messages: number): Case {
  const js = jetstream(nc);
  return {
    name: awaitAcks ? 'bare, awaited acks' : 'bare',
    messages,
    async run(stream, consumer, n) {
      const c = await js.consumers.get(stream, consumer);
      const t0 = performance.now();
      const iter = await c.consume({ max_messages: 100 });
      let seen = 0;
      for await (const m of iter) {
        if (awaitAcks) await m.ackAck();
        else m.ack();
        if (++seen === n) break;
      }
      await iter.close();
      await nc.flush();
      timings.set(this.name, performance.now() - t0);
    },
  };
}

function pipelineCase(name: string, processors: ProcessorOptions, messages: number): Case {
  return {
    name,
    messages,
    async run(stream, consumer, n) {
      const source = natsJetStream({ servers: SERVER, stream, consumer, metadata: false });
      const pipeline = await Pipeline.start({
        name: `bench-nats-${name.replace(/\W+/g, '-')}`,
        handlers,
        producer: { module: source },
        processors: { default: processors },
        batchers: { default: { batchSize: 100, batchTimeout: 50 } },
      });
      const t0 = performance.now();
      while (source.stats().acked < n) await sleep(1);
      await source.producers[0]!.connection!.flush();
      timings.set(name, performance.now() - t0);
      await pipeline.stop();
    },
  };
}

/** A pipeline case's own clock (start-up and stop() are not part of its rate). */
const timings = new Map<string, number>();

const natsProducer: Scenario = async ({ quick }) => {
  const nc = await connect({ servers: SERVER, name: 'throughway-bench' });
  const jsm = await jetstreamManager(nc);
  const n = quick ? 20_000 : 100_000;
  const rounds = quick ? 2 : 4;
  const cases: Case[] = [
    bareCase(nc, false, n),
    pipelineCase('pipeline, threads', { runtime: 'threads', concurrency: 1 }, n),
    pipelineCase('pipeline, inline', { runtime: 'inline', maxDemand: 1000 }, n),
    bareCase(nc, true, Math.round(n / 10)),
  ];
  const rates: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.name, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.name, []]));
  try {
    for (let r = -1; r < rounds; r++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + Math.max(r, 0)) % cases.length]!;
        const stream = await fill(nc, jsm, c.messages);
        try {
          gc();
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          timings.delete(c.name);
          await c.run(stream, 'bench', c.messages);
          const seconds = (timings.get(c.name) ?? performance.now() - t0) / 1000;
          const used = process.cpuUsage(c0);
          // Round -1 warms up the JIT and the server's code paths.
          if (r >= 0) {
            rates[c.name]!.push(c.messages / seconds);
            cpu[c.name]!.push((used.user + used.system) / c.messages);
          }
          log(NAME, `${r < 0 ? 'warm-up' : `round ${r + 1}`} ${c.name}: ${fmtRate(c.messages / seconds)}`);
        } finally {
          await jsm.streams.delete(stream).catch(() => undefined);
        }
      }
    }
  } finally {
    await nc.close();
  }
  const bare = rates.bare!;
  const results: BenchResult[] = [];
  const range = (xs: number[], digits = 2) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  results.push({
    scenario: SCENARIO,
    case: 'bare client loop, ack per message (no pipeline)',
    value: Math.round(median(bare)),
    unit: 'msg/s',
    note: `baseline: consume({ max_messages: 100 }), m.ack() each, then a flush; ${median(cpu.bare!).toFixed(2)} CPU-µs/msg; ${n.toLocaleString('en-US')} messages a round, median of ${rounds} (${range(bare.map((x) => x / 1000), 0)}k)`,
  });
  for (const c of cases.filter((c) => c.name.startsWith('pipeline'))) {
    const ratios = rates[c.name]!.map((x, i) => x / bare[i]!);
    const ratio = median(ratios);
    results.push({
      scenario: SCENARIO,
      case: `${c.name}, no-op handler, batcher of 100`,
      value: Math.round(median(rates[c.name]!)),
      unit: 'msg/s',
      baseline: { name: 'bare client loop', value: Math.round(median(bare)) },
      ratio,
      target: '>= 0.80 of baseline',
      met: ratio >= 0.8,
      note: `per-round ratios ${range(ratios)}; ${median(cpu[c.name]!).toFixed(2)} CPU-µs/msg (all threads); metadata off; start-up and stop() not timed; ${n.toLocaleString('en-US')} messages a round, median of ${rounds}`,
    });
  }
  const awaited = rates['bare, awaited acks']!;
  results.push({
    scenario: SCENARIO,
    case: 'bare client loop, awaiting each ack (ackAck)',
    value: Math.round(median(awaited)),
    unit: 'msg/s',
    baseline: { name: 'bare client loop, acks pipelined', value: Math.round(median(bare)) },
    ratio: median(awaited.map((x, i) => x / bare[i]!)),
    note: `what not pipelining acks costs: one round trip per message; ${Math.round(n / 10).toLocaleString('en-US')} messages a round, median of ${rounds}`,
  });
  return results;
};

export default natsProducer;
