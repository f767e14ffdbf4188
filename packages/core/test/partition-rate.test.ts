// partitionBy and rate limiting (issue 2), for both runtimes. Timing assertions only bound counts
// by elapsed time (never speed), with generous margins for a loaded 2-core machine.
import { describe, expect, test } from 'vitest';
import { ThroughwayError } from '@throughway/core';
import { AckRecorder, RUNTIMES, readLog, sleep, tmpLog, useHarness } from './helpers.js';

async function thrown(fn: () => unknown): Promise<any> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe.each(RUNTIMES)('partitionBy [%s]', (runtime) => {
  const h = useHarness(runtime);

  test('messages of one partition are processed in order, one at a time (processor concurrency 2)', async () => {
    const rec = new AckRecorder();
    const log = tmpLog();
    const opts = h.options(
      { context: { log } },
      { concurrency: 2, maxDemand: 4, minDemand: 2, partitionBy: (m: any) => m.data.user },
    );
    const p = await h.start(opts);
    const users = ['u1', 'u2', 'u3'];
    const datas = Array.from({ length: 15 }, (_, i) => ({ id: i, user: users[i % 3], sleepMs: 15 }));
    p.push(rec.messages(datas));
    await rec.waitForCount(15, 15_000);
    expect(rec.failedIds()).toEqual([]);
    const lines = readLog(log).filter((l) => l.ev === 'message');
    for (const user of users) {
      const mine = lines.filter((l) => l.user === user).sort((a, b) => a.start - b.start);
      expect(mine.map((l) => l.id), `order of ${user}`).toEqual(datas.filter((d) => d.user === user).map((d) => d.id));
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i].start, `${user}: message ${mine[i].id} starts after ${mine[i - 1].id} ended`).toBeGreaterThanOrEqual(mine[i - 1].end);
      }
    }
  });

  test('a failed message does not stop its partition', async () => {
    const rec = new AckRecorder();
    const opts = h.options({}, { concurrency: 2, maxDemand: 4, minDemand: 2, partitionBy: (m: any) => m.data.user });
    const p = await h.start(opts);
    p.push(rec.messages([{ id: 1, user: 'a' }, { id: 2, user: 'a', fail: 'throw' }, { id: 3, user: 'a' }, { id: 4, user: 'b' }]));
    await rec.waitForCount(4);
    expect(rec.failedIds()).toEqual([2]);
    expect(rec.successIds().sort()).toEqual([1, 3, 4]);
  });
});

describe.each(RUNTIMES)('rate limiting [%s]', (runtime) => {
  const h = useHarness(runtime);

  function endlessFactory(rec: AckRecorder, created: number[]) {
    let n = 0;
    return (index: number) => {
      created.push(index);
      return {
        handleDemand(d: number) {
          return Array.from({ length: d }, () => rec.message({ id: `${index}-${n++}` }));
        },
      };
    };
  }

  test('at most allowedMessages per interval, across all producers', async () => {
    const rec = new AckRecorder();
    const created: number[] = [];
    const ALLOWED = 5;
    const INTERVAL = 200;
    const opts = h.options({
      producer: { module: endlessFactory(rec, created), concurrency: 2, rateLimiting: { allowedMessages: ALLOWED, interval: INTERVAL } },
    });
    const tel = h.telemetry(opts.name);
    const t0 = Date.now();
    // refills happen at (limiter start) + k * interval, and the limiter cannot start before t0
    // A Node timer may fire up to ~1 ms early by Date.now() (nodejs/node#26578): allow a few ms.
    const SLACK_MS = 10;
    const bound = (t: number) => ALLOWED * (1 + Math.floor((t - t0 + SLACK_MS) / INTERVAL));
    const p = await h.start(opts);
    expect(created.sort()).toEqual([0, 1]);
    expect(await p.getRateLimiting()).toEqual({ allowedMessages: ALLOWED, interval: INTERVAL });
    await sleep(1100);
    const now = Date.now();
    const total = rec.count();
    let processed = 0;
    for (const e of tel.processor) {
      processed += e.size;
      expect(processed, `processed by ${e.t - t0} ms`).toBeLessThanOrEqual(bound(e.t));
    }
    expect(total).toBeLessThanOrEqual(bound(now));
    expect(total).toBeGreaterThanOrEqual(2 * ALLOWED); // it does make progress
  });

  test('updateRateLimiting applies at the next interval; getRateLimiting shows the new settings', async () => {
    const rec = new AckRecorder();
    const INTERVAL = 1000;
    const opts = h.options({
      producer: { module: endlessFactory(rec, []), rateLimiting: { allowedMessages: 3, interval: INTERVAL } },
    });
    const t0 = Date.now();
    const p = await h.start(opts);
    await rec.waitForCount(3);
    await p.updateRateLimiting({ allowedMessages: 10 });
    // Broadway's get_rate_limiting returns the updated settings at once (only the counter waits
    // for the next refill)
    expect.soft(await p.getRateLimiting(), 'getRateLimiting right after the update').toEqual({ allowedMessages: 10, interval: INTERVAL });
    await sleep(250);
    if (Date.now() - t0 < INTERVAL - 50) expect(rec.count(), 'no refill before the interval ends').toBe(3);
    await rec.waitForCount(13, 8000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(INTERVAL - 5); // a timer may fire ~1 ms early
    await sleep(200);
    if (Date.now() - t0 < 2 * INTERVAL - 50) expect(rec.count(), '10 per interval after the update').toBe(13);
    expect(await p.getRateLimiting()).toEqual({ allowedMessages: 10, interval: INTERVAL });
  });

  test('updateRateLimiting with reset: true applies at once', async () => {
    const rec = new AckRecorder();
    // Long enough that no loaded machine reaches the first natural refill by chance.
    const INTERVAL = 20_000;
    const opts = h.options({
      producer: { module: endlessFactory(rec, []), rateLimiting: { allowedMessages: 3, interval: INTERVAL } },
    });
    const t0 = Date.now();
    const p = await h.start(opts);
    await rec.waitForCount(3);
    await p.updateRateLimiting({ allowedMessages: 8, reset: true });
    await rec.waitForCount(11, 15_000);
    // reached long before the first natural refill
    expect(Date.now() - t0).toBeLessThan(INTERVAL);
    await sleep(150);
    if (Date.now() - t0 < INTERVAL - 50) expect(rec.count()).toBe(11);
    expect(await p.getRateLimiting()).toEqual({ allowedMessages: 8, interval: INTERVAL });
  });

  test('updateRateLimiting can change the interval', async () => {
    const rec = new AckRecorder();
    const opts = h.options({
      producer: { module: endlessFactory(rec, []), rateLimiting: { allowedMessages: 2, interval: 60_000 } },
    });
    const p = await h.start(opts);
    await rec.waitForCount(2);
    await p.updateRateLimiting({ interval: 100, reset: true });
    expect(await p.getRateLimiting()).toEqual({ allowedMessages: 2, interval: 100 });
    await rec.waitForCount(8, 5000);
  });

  test('getRateLimiting and updateRateLimiting throw a ThroughwayError when rate limiting is off', async () => {
    const p = await h.start(h.options());
    for (const call of [() => p.getRateLimiting(), () => p.updateRateLimiting({ allowedMessages: 1 })]) {
      const err = await thrown(call);
      expect(err).toBeInstanceOf(ThroughwayError);
      expect(err.message).toMatch(/rate limiting is not enabled/i);
      expect(err.code).toMatch(/^ERR_THROUGHWAY_[A-Z_]+$/);
    }
  });

  test('push bypasses the rate limit', async () => {
    const rec = new AckRecorder();
    const opts = h.options({ producer: { module: endlessFactory(new AckRecorder(), []), rateLimiting: { allowedMessages: 1, interval: 60_000 } } });
    const p = await h.start(opts);
    p.push(rec.messages([1, 2, 3, 4, 5, 6]));
    await rec.waitForCount(6, 5000);
  });
});
