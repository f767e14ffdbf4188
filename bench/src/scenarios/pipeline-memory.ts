/**
 * Memory under an endless producer: 60 s (quick: 15 s) through the threads runtime with a batcher,
 * RSS (main thread and all worker threads: one process) sampled every second. Reports the peak and
 * the growth over the last half of the run.
 */
import { Pipeline, createMessage } from '@throughway/core';
import type { BenchResult, Scenario } from '../scenario.js';
import { CountingAck, EndlessProducer, fmtRate, log, median, rssMiB, sleep } from '../harness/measure.js';
import { demandNote, joinNotes } from '../harness/pipeline.js';
import { makePayloads } from '../fixtures/payloads.js';

const handlers = new URL('../fixtures/noop-handler.js', import.meta.url);
const SCENARIO = 'memory, endless producer';

interface Sample {
  t: number;
  rss: number;
  acked: number;
}

const memory: Scenario = async ({ quick }) => {
  const seconds = quick ? 15 : 60;
  const payloads = makePayloads(1024);
  const ack = new CountingAck();
  const producer = new EndlessProducer(payloads, createMessage, ack);
  const rssBefore = rssMiB();
  const pipeline = await Pipeline.start({
    name: 'bench-memory',
    handlers,
    producer: { module: producer },
    processors: { default: { runtime: 'threads' } },
    batchers: { default: { concurrency: 1, batchSize: 100, batchTimeout: 1000 } },
  });
  const samples: Sample[] = [];
  const t0 = performance.now();
  let topology: unknown;
  try {
    for (let i = 1; i <= seconds; i++) {
      // sleep to the next whole second; the sample carries its real time
      await sleep(Math.max(0, t0 + i * 1000 - performance.now()));
      samples.push({ t: (performance.now() - t0) / 1000, rss: rssMiB(), acked: ack.total });
      if (i % 5 === 0 || i === seconds) log('memory', `t=${i}s rss=${samples.at(-1)!.rss.toFixed(1)} MiB acked=${ack.total.toLocaleString('en-US')}`);
    }
    topology = pipeline.topology();
  } catch (err) {
    await pipeline.stop({ timeout: 5000 }).catch(() => undefined);
    throw err;
  }
  const stopped = await pipeline.stop({ timeout: 30_000 });
  const half = seconds / 2;
  const lastHalf = samples.filter((s) => s.t >= half);
  // RSS swings by ±20-30 MiB from second to second with the collectors of four isolates (a 180 s
  // run: 220-279 MiB, no trend, 366M messages), so a window of 3 samples at each end read a swing
  // as growth (39 MiB once). A leak is a trend: compare the medians of the first and last thirds.
  const third = Math.max(1, Math.floor(lastHalf.length / 3));
  const startOfHalf = median(lastHalf.slice(0, third).map((s) => s.rss));
  const end = median(lastHalf.slice(-third).map((s) => s.rss));
  const growth = end - startOfHalf;
  const peak = Math.max(...samples.map((s) => s.rss));
  const halfMin = Math.min(...lastHalf.map((s) => s.rss));
  const halfMax = Math.max(...lastHalf.map((s) => s.rss));
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const rate = (last.acked - first.acked) / (last.t - first.t);
  log('memory', `throughput ${fmtRate(rate)}, peak ${peak.toFixed(1)} MiB, growth over last ${half}s ${growth.toFixed(1)} MiB`);

  return [
    {
      scenario: SCENARIO,
      case: `RSS growth over the last ${half} s`,
      value: growth,
      unit: 'MiB',
      target: '< 32 MiB',
      met: growth < 32 && ack.failed === 0,
      note: joinNotes(
        `median of the last ${third} one-second samples minus median of the first ${third} of the last half; last half ranged ${halfMin.toFixed(1)}–${halfMax.toFixed(1)} MiB`,
        ack.failed > 0 && `${ack.failed} messages failed`,
      ),
    },
    {
      scenario: SCENARIO,
      case: `peak RSS over ${seconds} s`,
      value: peak,
      unit: 'MiB',
      note: `whole process (main thread + processor and batch threads); ${rssBefore.toFixed(1)} MiB before the pipeline started`,
    },
    {
      scenario: SCENARIO,
      case: 'throughput during the run',
      value: rate,
      unit: 'msg/s',
      note: joinNotes(
        `threads runtime, batcher batchSize 100, ${ack.total.toLocaleString('en-US')} messages acked in ${seconds} s`,
        demandNote(topology),
        `stop() left ${stopped.unacked} unacked`,
      ),
    },
  ] satisfies BenchResult[];
};

export default memory;
