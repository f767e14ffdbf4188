// The live progress line on a terminal, plain lines elsewhere, and logs interleaving with both.
import { describe, expect, it } from 'vitest';
import { Progress, bar, describeSample, type ProgressSample } from '../src/progress.js';

function sink(columns?: number): { stream: NodeJS.WritableStream & { columns?: number }; text: () => string } {
  let out = '';
  const stream = { write: (chunk: string) => ((out += chunk), true), columns } as unknown as NodeJS.WritableStream & { columns?: number };
  return { stream, text: () => out };
}

const sample: ProgressSample = { done: 50_000, total: 200_000, failed: 1_250, processorLoad: 0.42, batcherLoad: { insert_all: 0.8, default: 0.01 }, inFlight: 1_800 };

describe('progress', () => {
  it('describes a sample with rate, acked, failed and per-stage load', () => {
    const text = describeSample(sample, 2_000, 25_000);
    expect(text).toContain('25% 50,000/200,000');
    expect(text).toContain('25,000 ev/s');
    expect(text).toContain('acked 48,750');
    expect(text).toContain('failed 1,250');
    expect(text).toContain('processors 42% insert_all 80% default 1%');
    expect(bar(0.5, 10)).toBe('█████░░░░░');
  });

  it('redraws one line in place on a terminal, and logs clear it first', async () => {
    const out = sink(200);
    const progress = new Progress({ stream: out.stream, tty: true, sample: () => sample, ttyEveryMs: 10 });
    progress.start();
    progress.stop();
    expect(out.text()).toMatch(/^\r\x1b\[K█+░+ 25% 50,000\/200,000/);
    expect(out.text().endsWith('\n')).toBe(true);

    const live = sink(60);
    const p2 = new Progress({ stream: live.stream, tty: true, sample: () => sample, ttyEveryMs: 5 });
    p2.start();
    await new Promise((resolve) => setTimeout(resolve, 30));
    p2.logStream.write('{"msg":"hello"}\n');
    p2.stop();
    const text = live.text();
    // The live line (cut to the terminal's width) is cleared, the log written, the line drawn again.
    expect(text).toMatch(/\r\x1b\[K\{"msg":"hello"\}\n█+░+ /);
    for (const drawn of text.split('\r\x1b[K')) expect(drawn.replace('{"msg":"hello"}\n', '').replace(/\n$/, '').length).toBeLessThanOrEqual(59);
  });

  it('prints plain lines when not on a terminal', () => {
    const out = sink();
    const progress = new Progress({ stream: out.stream, tty: false, sample: () => sample });
    progress.start();
    progress.logStream.write('log line\n');
    progress.stop();
    expect(out.text()).toBe(`log line\n[progress] ${out.text().split('[progress] ')[1]}`);
    expect(out.text()).not.toContain('\r');
  });
});
