/**
 * Baselines with no pipeline around them: Piscina with one task per message, and a chunked Piscina
 * round trip of the same ~200-byte JSON strings. The pipeline scenarios quote these (same run).
 */
import os from 'node:os';
import { Piscina } from 'piscina';
import type { BenchResult, Scenario } from '../scenario.js';
import { fmtRate, log, median } from '../harness/measure.js';
import { makePayloads } from '../fixtures/payloads.js';

export const SCENARIO = 'baseline';
export const CASE_ONE_TASK = 'piscina, one task per message';
export const chunkCase = (size: number): string => `piscina, chunks of ${size} (round trip)`;

const echoUrl = new URL('../fixtures/piscina-echo.js', import.meta.url).href;

/** Runs `count` tasks with at most `inFlight` outstanding; resolves when all are done. */
async function drive(pool: Piscina, count: number, inFlight: number, task: (i: number) => unknown): Promise<void> {
  let started = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const startOne = (): void => {
      const i = started++;
      pool.run(task(i)).then(() => {
        done++;
        if (started < count) startOne();
        else if (done === count) resolve();
      }, reject);
    };
    for (let k = 0; k < Math.min(inFlight, count); k++) startOne();
  });
}

async function measure(label: string, pool: Piscina, messages: number, perTask: number, inFlight: number, rounds: number, task: (i: number) => unknown): Promise<number> {
  const tasks = Math.ceil(messages / perTask);
  await drive(pool, Math.min(tasks, Math.max(200, tasks >> 2)), inFlight, task); // warm-up
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await drive(pool, tasks, inFlight, task);
    const s = (performance.now() - t0) / 1000;
    rates.push((tasks * perTask) / s);
    log(SCENARIO, `${label} round ${r + 1}: ${fmtRate((tasks * perTask) / s)}`);
  }
  return median(rates);
}

const baselines: Scenario = async ({ quick }) => {
  const threads = Math.max(1, os.availableParallelism());
  const payloads = makePayloads(1024);
  const rounds = quick ? 2 : 5;
  const pool = new Piscina({ filename: echoUrl, minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
  const results: BenchResult[] = [];
  try {
    // One task per message: the shape the engine must not have. Enough in flight to keep both threads busy.
    const oneTask = await measure('one task/message', pool, quick ? 20_000 : 30_000, 1, 64, rounds, (i) => payloads[i % payloads.length]);
    results.push({
      scenario: SCENARIO,
      case: CASE_ONE_TASK,
      value: oneTask,
      unit: 'msg/s',
      note: `${threads} threads, 64 tasks in flight, ~${payloads[0]!.length}-byte JSON string per task; median of ${rounds} rounds`,
    });

    for (const size of [100, 1000]) {
      const chunks = Array.from({ length: 16 }, (_, c) => Array.from({ length: size }, (_, i) => payloads[(c * size + i) % payloads.length]!));
      const rate = await measure(`chunks of ${size}`, pool, quick ? 300_000 : 1_000_000, size, threads * 2, rounds, (i) => chunks[i % chunks.length]);
      results.push({
        scenario: SCENARIO,
        case: chunkCase(size),
        value: rate,
        unit: 'msg/s',
        note: `${threads} threads, ${threads * 2} chunks in flight, the array of strings goes to the thread and back; no pipeline, no message objects, no acks; median of ${rounds} rounds`,
      });
    }
  } finally {
    await pool.destroy();
  }
  return results;
};

export default baselines;
