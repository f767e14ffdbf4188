// Real child processes on one queue: a SIGKILL mid-run and a second run (nothing lost), and two
// processes consuming together (each message processed by exactly one of them).
import { describe, expect, test } from 'vitest';
import { URL, adminConnection, countsById, depth, distinctIds, publish, runChild, sinkRows, tmpSink, uniqueName, waitFor, type Child } from './helpers.js';

async function declare(queue: string): Promise<void> {
  const ch = await (await adminConnection()).createChannel();
  await ch.assertQueue(queue, { durable: true });
  await ch.close();
}

async function finishes(child: Child): Promise<void> {
  const { code, signal } = await child.exited;
  expect({ code, signal }, child.output()).toEqual({ code: 0, signal: null });
}

async function started(child: Child): Promise<void> {
  await waitFor(() => child.output().includes('started '), `child ${child.process.pid} consuming\n${child.output()}`);
}

describe('processes on one queue', () => {
  test.each(['inline', 'threads'])('kill -9 of the consuming process mid-run [%s]: the next run gets the unacked messages, nothing is lost', async (runtime) => {
    const N = 3000;
    const queue = uniqueName('queue', 'kill');
    const sink = tmpSink();
    await declare(queue);
    await publish(queue, N);
    const common = { url: URL, queue, sink, runtime, batch: true, prefetch: 200 };

    const first = runChild('run-pipeline.mjs', { ...common, delayMs: 2 });
    try {
      await waitFor(() => distinctIds(sink) >= 500, '500 messages processed by the first run');
    } finally {
      first.process.kill('SIGKILL');
    }
    expect((await first.exited).signal).toBe('SIGKILL');
    const atKill = distinctIds(sink);
    expect(atKill).toBeLessThan(N);

    const second = runChild('run-pipeline.mjs', { ...common, delayMs: 0, untilCount: N });
    await finishes(second);

    const counts = countsById(sink);
    for (let i = 1; i <= N; i++) expect(counts.get(`m-${i}`), `m-${i} processed`).toBeGreaterThanOrEqual(1);
    // Twice only for what the dead process had processed but not acked: at most its prefetch.
    const twice = [...counts.values()].filter((n) => n > 1).length;
    expect(twice).toBeLessThanOrEqual(200);
    // The second run saw the first one's unacked messages as redeliveries.
    const secondPid = second.process.pid!;
    expect(sinkRows(sink).some((r) => r.pid === secondPid && r.redelivered === 1)).toBe(true);
    expect(await depth(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  }, 180_000);

  test('two processes consume one queue: each message is processed by exactly one of them, total = published', async () => {
    const N = 4000;
    const queue = uniqueName('queue', 'two');
    const sink = tmpSink();
    await declare(queue);
    const common = { url: URL, queue, sink, prefetch: 50, delayMs: 1, untilCount: N };
    const a = runChild('run-pipeline.mjs', common);
    const b = runChild('run-pipeline.mjs', common);
    await Promise.all([started(a), started(b)]);
    // Both consume before the first message is published, so the broker shares the queue between them.
    await publish(queue, N);
    await Promise.all([finishes(a), finishes(b)]);

    const rows = sinkRows(sink).filter((r) => r.outcome === 'ok');
    expect(rows).toHaveLength(N);
    const counts = countsById(sink);
    expect(counts.size).toBe(N);
    const byPid = new Map<number, number>();
    for (const r of rows) byPid.set(r.pid, (byPid.get(r.pid) ?? 0) + 1);
    expect([...byPid.keys()].sort()).toEqual([a.process.pid!, b.process.pid!].sort());
    expect([...byPid.values()].reduce((x, y) => x + y, 0)).toBe(N);
    expect(rows.every((r) => r.redelivered === 0)).toBe(true);
    expect(await depth(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  }, 180_000);
});
