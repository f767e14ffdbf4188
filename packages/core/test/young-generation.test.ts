// The processors' young generation (threads runtime): V8's own sizing until synchronous handlers
// measure as CPU-heavy, then the pool is replaced once, thread by thread, by threads with a 10 MB
// young generation. Nothing is lost or run twice on the way, every thread's setup has its teardown,
// and a young generation the user set is kept.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { createMessage } from '@throughway/core';
import { captureLogger, tmpLog, useHarness, waitFor } from './helpers.js';

/** The process's OS threads (Linux): each worker thread is one. */
const osThreads = () => readdirSync('/proc/self/task').length;

const HANDLERS = new URL('./fixtures/young-generation.ts', import.meta.url);

interface Out {
  id: number;
  tid: number;
  young: number | null;
}

function recorder() {
  const acked = new Map<number, Out>();
  let failed = 0;
  let duplicates = 0;
  const failures: { id: number; code?: string }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const module = {
    ack(_ref: unknown, successful: { data: Out }[], fails: unknown[]) {
      failed += fails.length;
      for (const m of fails as { data: number; status: { error?: { code?: string } } }[]) failures.push({ id: m.data, code: m.status.error?.code });
      for (const m of successful) {
        if (acked.has(m.data.id)) duplicates++;
        acked.set(m.data.id, m.data);
      }
      for (const w of waiters.splice(0)) if (acked.size + failed >= w.n) w.resolve();
      else waiters.push(w);
    },
  };
  return {
    acked,
    failures,
    get failed() {
      return failed;
    },
    get duplicates() {
      return duplicates;
    },
    messages: (from: number, n: number) => Array.from({ length: n }, (_, i) => createMessage(from + i, { acknowledger: { module, ref: 'young' } })),
    waitFor: (n: number) => new Promise<void>((resolve) => (acked.size + failed >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { ev: string; tid: number; young?: number });

/** Pushes messages `from`..`n - 1` in chunks and waits until all `n` are acked or failed. */
async function pushAll(p: { push(messages: unknown[]): void }, rec: ReturnType<typeof recorder>, n: number, chunk: number, from = 0): Promise<void> {
  for (let at = from; at < n; at += chunk) p.push(rec.messages(at, Math.min(chunk, n - at)));
  await rec.waitFor(n);
}

/** The pipeline's log lines about a replacement of the processor threads. */
const notices = (cap: ReturnType<typeof captureLogger>) => cap.lines.filter((l) => /young generation/.test(l.msg ?? ''));

describe('threads runtime: the processors\' young generation', () => {
  const h = useHarness('threads');

  function start(micros: number, processors: Record<string, unknown> = {}, context: Record<string, unknown> = {}) {
    const log = tmpLog();
    const cap = captureLogger();
    const options = h.options({ handlers: HANDLERS, context: { log, micros, ...context }, logger: cap.logger }, { concurrency: 2, maxDemand: 200, minDemand: 100, ...processors });
    return { log, cap, started: h.start(options) };
  }

  test('CPU-heavy synchronous handlers: the threads are replaced once by threads with a 10 MB young generation; nothing lost, run twice or left without teardown', async () => {
    const { log, cap, started } = start(60);
    const p = await started;
    const rec = recorder();
    const N = 40_000;
    // The process's threads while the first pool runs (with a .ts handler module, a thread may
    // bring a thread of its own for the loader's hooks), before its ~300 ms of measured work end.
    p.push(rec.messages(0, 500));
    await rec.waitFor(500);
    const threadsBefore = osThreads();
    await pushAll(p, rec, N, 5000, 500);
    expect(rec.failed).toBe(0);
    expect(rec.duplicates).toBe(0);
    expect([...rec.acked.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    const first = new Set(lines(log).filter((l) => l.ev === 'setup' && l.young !== 10).map((l) => l.tid));
    const tuned = [...rec.acked.values()].filter((o) => o.young === 10);
    // Decided after 600 ms of handler time (~10,000 messages): the rest ran on the new threads.
    expect(tuned.length).toBeGreaterThan(N / 4);
    for (const o of tuned) expect(first.has(o.tid)).toBe(false);
    expect(new Set(tuned.map((o) => o.tid)).size).toBe(2);
    // The old threads ran their teardown before stop; each thread's setup has exactly one teardown.
    const before = lines(log);
    for (const tid of first) expect(before.filter((l) => l.ev === 'teardown' && l.tid === tid), JSON.stringify(before)).toHaveLength(1);
    expect(p.stats().processors.threadDeaths).toBe(0);
    // The replaced pool is gone: as many threads are left as before the replacement, not twice as many.
    await waitFor(() => osThreads() <= threadsBefore, 'the replaced threads to end', 10_000);
    const replaced = notices(cap);
    expect(replaced).toHaveLength(1);
    expect(replaced[0]).toMatchObject({ level: 30, stage: 'processor' });
    expect(replaced[0].msg).toMatch(/replaced by threads with a 10 MB young generation: handlers measured \d+ µs a message/);
    expect(cap.warnings()).toEqual([]);
    const result = await p.stop({ timeout: 10_000 });
    expect(result.unacked).toBe(0);
    const all = lines(log);
    const setups = all.filter((l) => l.ev === 'setup').map((l) => l.tid).sort();
    const teardowns = all.filter((l) => l.ev === 'teardown').map((l) => l.tid).sort();
    expect(setups).toHaveLength(4);
    expect(teardowns).toEqual(setups);
  }, 60_000);

  test('threads that die before, during and after the replacement fail only the message that killed them', async () => {
    const exitOn = [1500, 6000, 9000, 12_000, 24_000];
    const { log, cap, started } = start(60, {}, { exitOn });
    const p = await started;
    const rec = recorder();
    const N = 30_000;
    await pushAll(p, rec, N, 3000);
    expect(rec.failures.map((f) => f.id).sort((a, b) => a - b)).toEqual(exitOn);
    for (const f of rec.failures) expect(f.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(rec.duplicates).toBe(0);
    expect(rec.acked.size).toBe(N - exitOn.length);
    expect([...rec.acked.values()].some((o) => o.young === 10)).toBe(true);
    expect(notices(cap)).toHaveLength(1);
    await p.stop({ timeout: 10_000 });
    // Each exit kills two threads (the task's, then the isolation thread running the message
    // alone); every other thread that ran setup, retired ones included, ran its teardown once.
    expect(p.stats().processors.threadDeaths).toBe(exitOn.length * 2);
    const all = lines(log);
    const teardowns = all.filter((l) => l.ev === 'teardown').map((l) => l.tid);
    expect(new Set(teardowns).size).toBe(teardowns.length);
    expect(all.filter((l) => l.ev === 'setup' && !teardowns.includes(l.tid)), JSON.stringify(all) + JSON.stringify([...new Set([...rec.acked.values()].map((o) => o.tid))])).toHaveLength(exitOn.length * 2);
  }, 90_000);

  test('light handlers keep their threads and V8\'s own young generation', async () => {
    const { log, cap, started } = start(0);
    const p = await started;
    const rec = recorder();
    const N = 200_000;
    await pushAll(p, rec, N, 10_000);
    const setups = lines(log).filter((l) => l.ev === 'setup');
    expect(setups).toHaveLength(2);
    expect(new Set([...rec.acked.values()].map((o) => o.tid))).toEqual(new Set(setups.map((l) => l.tid)));
    expect([...rec.acked.values()].some((o) => o.young === 10)).toBe(false);
    expect(notices(cap)).toEqual([]);
    await p.stop();
  }, 60_000);

  /** Runs `n` messages through a pipeline whose threads must not be replaced; returns the setups. */
  async function notReplaced(n: number, processors: Record<string, unknown>, context: Record<string, unknown>) {
    const { log, cap, started } = start(60, processors, context);
    const p = await started;
    const rec = recorder();
    await pushAll(p, rec, n, 5000);
    expect(rec.acked.size).toBe(n);
    expect(notices(cap)).toEqual([]);
    await p.stop();
    return { outs: [...rec.acked.values()], setups: lines(log).filter((l) => l.ev === 'setup') };
  }

  test('CPU-heavy handlers whose messages carry much data keep V8\'s young generation (a task\'s live data would not fit a small one)', async () => {
    const { outs, setups } = await notReplaced(20_000, {}, { pad: 2000 });
    expect(setups).toHaveLength(2);
    expect(outs.some((o) => o.young === 10)).toBe(false);
  }, 60_000);

  test('a young generation the user set is kept: no replacement, however heavy the handlers', async () => {
    const { outs, setups } = await notReplaced(30_000, { resourceLimits: { maxYoungGenerationSizeMb: 24 } }, {});
    expect(setups.map((l) => l.young)).toEqual([24, 24]);
    expect(new Set(outs.map((o) => o.young))).toEqual(new Set([24]));
  }, 60_000);
});
