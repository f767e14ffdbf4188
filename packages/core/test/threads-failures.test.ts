// Thread-specific failures (issue 3, "Failures"): a thread that dies is replaced, only the message
// that killed it fails, with a clear reason (issue 9; more in poison-isolation.test.ts), and the
// pipeline goes on; errors cross threads with name,
// message, stack and code; after stop() no thread or handle is left behind.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { AckRecorder, captureLogger, readLog, statusText, tmpLog, useHarness, waitFor } from './helpers.js';

describe('threads runtime: failures', () => {
  const h = useHarness('threads');

  async function diesAndRecovers(die: 'uncaught' | 'exit' | 'oom', reason: RegExp, extra: Record<string, unknown> = {}) {
    const rec = new AckRecorder();
    const log = tmpLog();
    const cap = captureLogger();
    const opts = h.options({ context: { log }, logger: cap.logger }, { concurrency: 1, ...extra });
    const p = await h.start(opts);
    // pushed together: one processor call, held by one thread when it dies
    const t0 = Date.now();
    p.push(rec.messages([1, 2, { id: 3, die }, 4]));
    // Generous for a loaded machine (a thread to replace, an isolation thread to start), and still
    // far short of the 120 s an 'uncaught' handler sleeps: the death is not waited out.
    await rec.waitForCount(4, 45_000);
    expect(Date.now() - t0).toBeLessThan(45_000);
    // the call's messages were retried one at a time: only the one that kills a thread fails
    expect(rec.shape()).toEqual([[[1, 2, 4], [3]]]);
    expect(rec.find(3).status.error.code).toBe('ERR_THROUGHWAY_THREAD_DIED');
    expect(statusText(rec.find(3))).toMatch(reason);
    // the thread is replaced and the pipeline goes on
    p.push(rec.messages([5, 6]));
    await rec.waitForCount(6, 30_000);
    expect(rec.shape()[1]).toEqual([[5, 6], []]);
    p.push(rec.messages([7]));
    await rec.waitForCount(7, 15_000);
    expect(rec.shape()[2]).toEqual([[7], []]);
    // the replacement thread ran setup before its callbacks
    const lines = readLog(log);
    const diedIn = lines.filter((l) => l.ev === 'setup').map((l) => l.tid);
    const later = lines.filter((l) => l.ev === 'message' && [5, 6, 7].includes(l.id));
    expect(later.length).toBe(3);
    for (const l of later) expect(diedIn).toContain(l.tid);
    const dead = lines.find((l) => l.ev === 'message' && l.id === 1)?.tid;
    expect(dead).toBeDefined();
    for (const l of later) expect(l.tid, 'a new thread').not.toBe(dead);
    // each death was logged once: the task's, then the poison's when retried alone
    expect(cap.warnings(/processor thread/).length).toBe(2);
    expect(p.stats().processors.threadDeaths).toBe(2);
    // and stop() still drains promptly: the dead thread is not waited for
    const t1 = Date.now();
    const result = await p.stop({ timeout: 10_000 });
    expect(result.unacked).toBe(0);
    expect(Date.now() - t1, 'stop() after a thread died').toBeLessThan(3000);
    const teardowns = readLog(log).filter((l) => l.ev === 'teardown');
    for (const l of later) expect(teardowns.map((t) => t.tid)).toContain(l.tid);
    return { rec, lines };
  }

  test('an uncaught error thrown from a timer kills the thread: only its message fails, the thread is replaced', async () => {
    await diesAndRecovers('uncaught', /uncaught in thread 3/);
  });

  test('process.exit(1) in handleMessage: only that message fails, with a reason; the thread is replaced', async () => {
    await diesAndRecovers('exit', /exit/i);
  });

  test('out of memory under resourceLimits: only that message fails, with a reason; the thread is replaced', async () => {
    await diesAndRecovers('oom', /memory/i, { resourceLimits: { maxOldGenerationSizeMb: 64 } });
  });

  test('a thread dying does not touch calls held by other threads', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ logger: captureLogger().logger }, { concurrency: 2, maxDemand: 4, minDemand: 2 });
    const p = await h.start(opts);
    // two calls of 2: [1, dies] and [3, 4 (slow)], on two threads
    p.push(rec.messages([{ id: 1 }, { id: 2, die: 'exit', sleepMs: 100 }]));
    p.push(rec.messages([{ id: 3 }, { id: 4, sleepMs: 300 }]));
    await rec.waitForCount(4, 15_000);
    expect(rec.failedIds()).toEqual([2]);
    expect(rec.successIds().sort()).toEqual([1, 3, 4]);
    // stop() drains promptly: the dead thread is not waited for
    const t1 = Date.now();
    expect((await p.stop({ timeout: 10_000 })).unacked).toBe(0);
    expect(Date.now() - t1, 'stop() after a thread died (processor concurrency 2)').toBeLessThan(3000);
  });

  // A thread that dies holding no task: its task's messages were acked as they were, the death is
  // logged once (with its cause), and the next call runs on the replacement thread.
  for (const [die, cause] of [
    ['uncaughtLater', /uncaught after 2/],
    ['exitLater', /exited with code: 7/],
  ] as const) {
    test(`a thread that dies between tasks (${die}): logged once with its cause, nothing failed, replaced`, async () => {
      const rec = new AckRecorder();
      const log = tmpLog();
      const cap = captureLogger();
      const p = await h.start(h.options({ context: { log }, logger: cap.logger }, { concurrency: 1, maxDemand: 6, minDemand: 3 }));
      p.push(rec.messages([1, { id: 2, die }, 3]));
      await rec.waitForCount(3, 15_000);
      expect(rec.shape()).toEqual([[[1, 2, 3], []]]);
      await waitFor(() => cap.lines.some((l) => l.level >= 50 && /between tasks/.test(l.msg)), 'the idle death logged', 15_000);
      const deaths = cap.lines.filter((l) => l.level >= 50 && /processor thread/.test(l.msg));
      expect(deaths.length).toBe(1);
      expect(deaths[0].msg).toBe('a processor thread died between tasks; it is replaced');
      expect(deaths[0].err.message).toMatch(cause);
      expect(p.stats().processors.threadDeaths).toBe(1);
      p.push(rec.messages([4, 5]));
      await rec.waitForCount(5, 30_000);
      expect(rec.shape()[1]).toEqual([[4, 5], []]);
      const lines = readLog(log);
      const first = lines.find((l) => l.ev === 'message' && l.id === 1)!.tid;
      const later = lines.find((l) => l.ev === 'message' && l.id === 4)!.tid;
      expect(later, 'a new thread').not.toBe(first);
      expect((await p.stop({ timeout: 10_000 })).unacked).toBe(0);
      expect(cap.lines.filter((l) => l.level >= 50 && /processor thread/.test(l.msg)).length, 'no death at stop').toBe(1);
    });
  }

  test('a batch worker that dies fails its batch, is replaced, and the batcher goes on', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options({ context: { log }, batchers: { default: { concurrency: 1, batchSize: 2, batchTimeout: 20_000 } } });
    const p = await h.start({ ...opts, logger: captureLogger().logger });
    p.push(rec.messages([1, { id: 2, batchFail: 'exit' }]));
    await rec.waitForCount(2, 15_000);
    expect(rec.shape()).toEqual([[[], [1, 2]]]);
    expect(statusText(rec.find(2))).toMatch(/exit|worker|thread/i);
    p.push(rec.messages([3, 4]));
    await rec.waitForCount(4, 15_000);
    expect(rec.shape()[1]).toEqual([[3, 4], []]);
    const batchSetups = readLog(log).filter((l) => l.ev === 'setup' && l.info?.kind === 'batcher');
    expect(batchSetups.length).toBe(2); // the first slot thread and its replacement
    const t1 = Date.now();
    expect((await p.stop({ timeout: 10_000 })).unacked).toBe(0);
    expect(Date.now() - t1, 'stop() after a batch worker died').toBeLessThan(3000);
  });

  test('errors cross threads as {name, message, stack, code}', async () => {
    const rec = new AckRecorder();
    const p = await h.start(h.options());
    p.push(rec.messages([{ id: 1, fail: 'code' }, { id: 2, fail: 'custom' }]));
    await rec.waitForCount(2);
    const e1 = rec.find(1).status.error;
    expect(e1).toEqual({ name: 'TypeError', message: 'bad input 1', stack: expect.stringContaining('bad input 1'), code: 'E_BAD_INPUT' });
    expect(e1.stack).toContain('scripted');
    expect(rec.find(2).status.error).toMatchObject({ name: 'ValidationError', message: 'invalid 2' });
    // plain data, not a live Error
    expect(e1).not.toBeInstanceOf(Error);
    expect(JSON.parse(JSON.stringify(e1))).toEqual(e1);
  });
});

describe.each([
  ['threads', ''],
  ['inline', ''],
  ['threads', 'heavy'],
])('after stop() the process exits on its own [%s %s]', (runtime, mode) => {
  test('a child process running a pipeline exits within a few seconds of stop()', async () => {
    const script = fileURLToPath(new URL('./fixtures/exit-child.mjs', import.meta.url));
    const child = spawn(process.execPath, [script, runtime, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let stoppedAt = 0;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!stoppedAt && stdout.includes('STOPPED')) stoppedAt = Date.now();
    });
    child.stderr.on('data', (d) => (stderr += d));
    const outcome = await new Promise<{ code: number | null; signal: string | null; killed: boolean }>((resolve) => {
      let killed = false;
      const overall = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, 30_000);
      const poll = setInterval(() => {
        if (stoppedAt && Date.now() - stoppedAt > 4000 && child.exitCode === null) {
          killed = true;
          child.kill('SIGKILL');
        }
      }, 100);
      child.on('exit', (code, signal) => {
        clearTimeout(overall);
        clearInterval(poll);
        resolve({ code, signal, killed });
      });
    });
    const context = `stdout: ${stdout}\nstderr: ${stderr}`;
    expect(stoppedAt, `the child printed STOPPED\n${context}`).toBeGreaterThan(0);
    expect(outcome.killed, `the child did not exit within 4 s of stop()\n${context}`).toBe(false);
    expect(outcome.code, context).toBe(0);
    const line = stdout.split('\n').find((l) => l.startsWith('STOPPED'))!;
    // heavy: the processor threads were replaced while it ran (a 10 MB young generation), and the
    // pool they replaced is gone too.
    expect(JSON.parse(line.slice('STOPPED '.length))).toEqual(mode === 'heavy' ? { acked: 20_000, unacked: 0, tuned: true } : { acked: 30, unacked: 0 });
  });
});
