// Real child processes on one JetStream consumer: a SIGKILL mid-run, and two processes sharing it.
import { afterEach, describe, expect, test } from 'vitest';
import { consumerState, countsById, publishIds, runChild, SERVER, sinkDistinct, sinkRows, testStream, tmpSink, waitFor, type Child, type TestStream } from './helpers.js';

let stream: TestStream | undefined;
const children: Child[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
  await stream?.delete();
  stream = undefined;
});

function start(arg: Record<string, unknown>): Child {
  const child = runChild('run-nats-pipeline.mjs', { servers: SERVER, stream: stream!.name, consumer: stream!.consumer, ...arg });
  children.push(child);
  return child;
}

async function finishes(child: Child): Promise<void> {
  const { code, signal } = await child.exited;
  expect({ code, signal }, child.output()).toEqual({ code: 0, signal: null });
}

describe('natsJetStream across processes', () => {
  test('kill -9 mid-run: what the dead process held is delivered again after ack_wait, a second run finishes, nothing is lost', async () => {
    stream = await testStream({ ack_wait: 2_000_000_000 });
    const N = 3000;
    await publishIds(stream, 1, N);
    const sink = tmpSink();

    const first = start({ sink, delayMs: 1 });
    try {
      await waitFor(() => sinkDistinct(sink) >= 300, '300 messages processed by the first run', 45_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nchild output:\n${first.output()}`);
    }
    first.process.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const atKill = await consumerState(stream);
    expect(atKill.ackPending, 'messages were in flight when the process died').toBeGreaterThan(0);
    expect(sinkDistinct(sink)).toBeLessThan(N);

    const second = start({ sink, untilDone: N });
    await finishes(second);

    const counts = countsById(sink);
    for (let id = 1; id <= N; id++) expect(counts.get(id), `message ${id} processed`).toBeGreaterThanOrEqual(1);
    expect(counts.size).toBe(N);
    // Only redeliveries can be processed twice, and each of them says so.
    const second_pid = sinkRows(sink).filter((r) => r.delivery > 1);
    expect(second_pid.length).toBeGreaterThan(0);
    expect(await consumerState(stream)).toMatchObject({ pending: 0, ackPending: 0 });
  });

  test('two processes on one consumer: each message processed by exactly one of them, both take part, total = published', async () => {
    stream = await testStream();
    const N = 4000;
    const sink = tmpSink();
    const a = start({ sink, delayMs: 1, untilDone: N, maxDemand: 20 });
    const b = start({ sink, delayMs: 1, untilDone: N, maxDemand: 20 });
    await waitFor(() => a.output().includes('started') && b.output().includes('started'), 'both pipelines started', 45_000);
    await publishIds(stream, 1, N);
    await Promise.all([finishes(a), finishes(b)]);

    const rows = sinkRows(sink);
    expect(rows).toHaveLength(N);
    const counts = countsById(sink);
    expect(counts.size).toBe(N);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    const byPid = new Map<number, number>();
    for (const r of rows) byPid.set(r.pid, (byPid.get(r.pid) ?? 0) + 1);
    expect(new Set(byPid.keys()), a.output() + b.output()).toEqual(new Set([a.process.pid, b.process.pid]));
    for (const [pid, n] of byPid) expect(n, `messages processed by ${pid}`).toBeGreaterThan(N / 10);
    expect(await consumerState(stream)).toMatchObject({ pending: 0, ackPending: 0, delivered: N });
  });
});
