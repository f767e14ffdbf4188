// progress(pipeline): the live bar on a terminal (a fake TTY stream), plain lines elsewhere, the
// summary at the end, no timer left behind; and the rates stats() gained for it.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { DummyProducer, Pipeline, createMessage, failureReason, fromIterable, progress } from '@throughway/core';
import { AckRecorder, uniqueName, waitFor } from './helpers.js';

const VERDICT = new URL('./fixtures/verdict.ts', import.meta.url);

class FakeStream extends Writable {
  text = '';
  constructor(
    readonly isTTY: boolean,
    readonly columns = 200,
  ) {
    super();
  }
  override _write(chunk: Buffer | string, _encoding: string, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

const started: Pipeline[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop({ timeout: 3000 }).catch(() => undefined)));
});

async function start(over: Record<string, unknown> = {}): Promise<Pipeline> {
  const pipeline = await Pipeline.start({
    name: uniqueName('progress'),
    handlers: VERDICT,
    producer: { module: new DummyProducer() },
    processors: { default: { concurrency: 1, runtime: 'inline', maxDemand: 20 } },
    batchers: { default: { batchSize: 10, batchTimeout: 20 }, audit: { batchSize: 10, batchTimeout: 20 } },
    ...over,
  } as never);
  started.push(pipeline);
  return pipeline;
}

/** 90 good messages (30 of them to the 'audit' batcher) and 10 failing for two reasons. */
function push(pipeline: Pipeline, rec: AckRecorder): void {
  const datas = Array.from({ length: 100 }, (_, i) => ({
    id: i,
    ...(i % 10 === 0 ? { reject: i % 20 === 0 ? 'no customer' : 'bad total' } : {}),
    ...(i % 3 === 0 ? { batcher: 'audit' } : {}),
  }));
  pipeline.push(datas.map((d) => rec.message(d)));
}

const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
// eslint-disable-next-line no-control-regex
const ESC = /\x1b\[[0-9;]*[A-Za-z]|\x1b[78]/g;

describe('progress on a terminal', () => {
  test('redraws one bar in place with rate, acked, failed, ETA and per-stage load, then prints the summary and leaves no timer', async () => {
    const baseline = timeouts();
    const pipeline = await start();
    const stream = new FakeStream(true, 200);
    const bar = progress(pipeline, { total: 200, stream });
    const rec = new AckRecorder();
    push(pipeline, rec);
    await rec.waitForCount(100);
    await waitFor(() => stream.text.includes('acked 90 · failed 10'), 'a frame showing every ack', 15_000);

    // cli-progress moves to column 1 and clears to the right after the text: each frame
    // overwrites the last in place, and a frame is written only when its text changed.
    const frames = stream.text.split('\x1b[1G').slice(1).map((f) => f.replace(ESC, '').replace(/\n$/, ''));
    expect(frames.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < frames.length; i++) expect(frames[i]).not.toBe(frames[i - 1]);
    const last = frames.find((f) => f.includes('acked 90 · failed 10'))!;
    expect(last).toMatch(/^█{10}░{10} 50% 100\/200 · [\d,]+ msg\/s · ETA (\d+\.\d+s|\d+s|\d+m\d\ds|\?) · acked 90 · failed 10 · (\d+\.\ds|\d+s) · load: processors \d+% default \d+% audit \d+% · in flight 0$/);
    expect(stream.text).not.toContain('[progress]');

    await pipeline.stop();
    const summary = await bar.finished;
    expect(summary).toMatchObject({ pipeline: pipeline.name, acked: 90, failed: 10, in: 0, unacked: 0 });
    expect(summary.failures).toEqual([
      { reason: 'bad total', count: 5 },
      { reason: 'no customer', count: 5 },
    ]);
    const tail = stream.text.slice(stream.text.lastIndexOf('\x1b8')).replace(ESC, '');
    expect(tail).toMatch(new RegExp(`^\\n${pipeline.name}: 100 messages in \\d+\\.\\ds \\([\\d,]+ msg/s\\): 90 acked, 10 failed \\(0 emitted by the producers\\)\\n  failures by reason:\\n {11}5  bad total\\n {11}5  no customer\\n$`));
    // stop() again returns the same summary and writes nothing
    const length = stream.text.length;
    expect(bar.stop()).toBe(summary);
    expect(stream.text.length).toBe(length);
    await waitFor(() => timeouts() <= baseline, `no timer left (baseline ${baseline}, now ${timeouts()})`, 10_000);
  });

  test('log lines written through logStream appear whole, above the bar', async () => {
    const pipeline = await start();
    const stream = new FakeStream(true, 200);
    const bar = progress(pipeline, { stream });
    const rec = new AckRecorder();
    push(pipeline, rec);
    await rec.waitForCount(100);
    bar.logStream.write('a log line\n');
    await pipeline.stop();
    await bar.finished;
    // The bar's line is cleared, the log line written whole, the bar drawn again below it.
    expect(stream.text).toMatch(/\r\x1b\[Ka log line\n\x1b7\d+ done · /);
  });
});

describe('progress off a terminal', () => {
  test('writes one plain line per interval, no escape codes, and the summary at the end', async () => {
    const pipeline = await start();
    const stream = new FakeStream(false);
    const bar = progress(pipeline, { stream, interval: 100 });
    const rec = new AckRecorder();
    push(pipeline, rec);
    await rec.waitForCount(100);
    await waitFor(() => stream.text.includes('acked 90 · failed 10'), 'a line showing every ack', 15_000);
    await pipeline.stop();
    await bar.finished;
    expect(stream.text).not.toMatch(/\x1b|\r/);
    const lines = stream.text.trimEnd().split('\n');
    const progressLines = lines.filter((l) => l.startsWith('[progress]'));
    expect(progressLines.length).toBeGreaterThanOrEqual(2);
    for (const line of progressLines) {
      expect(line).toMatch(new RegExp(`^\\[progress\\] ${pipeline.name} [\\d,]+ done · [\\d,]+ msg/s · acked \\d+ · failed \\d+ · \\d+\\.\\ds · load: processors \\d+% default \\d+% audit \\d+% · in flight \\d+( · draining)?$`));
    }
    expect(lines.slice(-4)).toEqual([
      expect.stringMatching(new RegExp(`^${pipeline.name}: 100 messages in .* 90 acked, 10 failed`)),
      '  failures by reason:',
      '           5  bad total',
      '           5  no customer',
    ]);
  });

  test('stops at once when attached to a pipeline already stopped', async () => {
    const pipeline = await start();
    await pipeline.stop();
    const stream = new FakeStream(false);
    const summary = await progress(pipeline, { stream, summary: false }).finished;
    expect(summary).toMatchObject({ acked: 0, failed: 0, failures: [] });
    expect(stream.text).toMatch(/^\[progress\] .* 0 done/);
  });

  test('rejects bad options before drawing anything, naming the option', async () => {
    const pipeline = await start();
    expect(() => progress(pipeline, { interval: 50 })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`progress.interval`') }));
    expect(() => progress(pipeline, { total: -1 })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`progress.total`') }));
    expect(() => progress(pipeline, { stream: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`progress.stream`') }));
  });
});

describe('stats() rates, elapsed time and rate limiting', () => {
  test('reports acks per second over the last interval, the elapsed time, and how often the rate limit held demand back', async () => {
    const rec = new AckRecorder();
    const events = Array.from({ length: 60 }, (_, i) => ({ id: i, ...(i < 6 ? { reject: 'no' } : {}) }));
    const pipeline = await start({
      producer: { module: fromIterable(events), transformer: (e: unknown) => createMessage(e, { acknowledger: { module: rec.module, ref: 'r' } }), rateLimiting: { allowedMessages: 20, interval: 50 } },
    });
    await rec.waitForCount(60);
    const s = pipeline.stats();
    expect(s.elapsedMs).toBeGreaterThan(0);
    expect(s.rates.intervalMs).toBeGreaterThan(0);
    expect(s.rates.inPerSecond).toBeCloseTo(((60 - 0) * 1000) / s.rates.intervalMs, 0);
    expect(s.rates.ackedPerSecond).toBeCloseTo((54 * 1000) / s.rates.intervalMs, 0);
    expect(s.rates.failedPerSecond).toBeCloseTo((6 * 1000) / s.rates.intervalMs, 0);
    expect(s.rateLimiting).toMatchObject({ allowedMessages: 20, interval: 50 });
    expect(s.rateLimiting!.throttled).toBeGreaterThan(0);
    // Nothing new arrives: once the window has moved past the last ack, the rates fall to zero.
    await waitFor(() => pipeline.stats().rates.ackedPerSecond === 0, 'the rate to fall to zero', 15_000);
    const quiet = pipeline.stats();
    expect(quiet.rates).toMatchObject({ inPerSecond: 0, failedPerSecond: 0 });
    expect(quiet.rates.intervalMs).toBeGreaterThanOrEqual(1000);
  });

  test('rateLimiting is null without a rate limit', async () => {
    const pipeline = await start();
    expect(pipeline.stats().rateLimiting).toBeNull();
  });
});

describe('failureReason', () => {
  test('groups failures: a reason, an Error reason, an error with a code; numbers and quoted text masked', () => {
    expect(failureReason({ kind: 'failed', reason: 'bad_base64: payload is not Base64: "eyJ0e..."' })).toBe('bad_base64: payload is not Base64: "…"');
    expect(failureReason({ kind: 'failed', reason: { name: 'RangeError', message: 'too big 17' } })).toBe('too big N');
    expect(failureReason({ kind: 'error', error: { name: 'TypeError', message: 'bad input 3.5\n  at x', stack: '', code: 'E_BAD_INPUT' } as never })).toBe('E_BAD_INPUT: bad input N at x');
    expect(failureReason({ kind: 'failed', reason: { retry: false } })).toBe('{"…":false}');
    expect(failureReason({ kind: 'failed', reason: 'missing_field: cus_90000003 has no name (base64)' })).toBe('missing_field: cus_N has no name (base64)');
    expect(failureReason({ kind: 'failed', reason: 'x'.repeat(300) })).toHaveLength(120);
  });
});
