// A workspace package consumes another through its public entry (issue 2, "Workspace").
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import * as core from '@throughway/core';
import * as workers from '@throughway/workers';

describe('workspace packages', () => {
  test('@throughway/core re-exports the very Message helpers and ThroughwayError of @throughway/workers', () => {
    expect(core.Message).toBe(workers.Message);
    expect(core.ThroughwayError).toBe(workers.ThroughwayError);
    for (const helper of ['updateData', 'putData', 'putBatcher', 'putBatchKey', 'putBatchMode', 'failed', 'configureAck', 'ackImmediately']) {
      expect(typeof (core.Message as any)[helper], helper).toBe('function');
    }
    expect(typeof core.Pipeline.start).toBe('function');
    expect(typeof core.createMessage).toBe('function');
    expect(typeof core.fromIterable).toBe('function');
    expect(typeof core.DummyProducer).toBe('function');
    expect(typeof workers.definePipeline).toBe('function');
  });

  test('plain Node resolves both packages by name to their built dist entries', () => {
    const cwd = fileURLToPath(new URL('.', import.meta.url));
    const script = `
      const core = await import('@throughway/core');
      const workers = await import('@throughway/workers');
      console.log(JSON.stringify({
        same: core.Message === workers.Message && core.ThroughwayError === workers.ThroughwayError,
        core: import.meta.resolve('@throughway/core'),
        workers: import.meta.resolve('@throughway/workers'),
      }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd, encoding: 'utf8', timeout: 20_000 });
    const result = JSON.parse(out.trim().split('\n').pop()!);
    expect(result.same).toBe(true);
    expect(result.core).toMatch(/packages\/core\/dist\/index\.js$/);
    expect(result.workers).toMatch(/packages\/workers\/dist\/index\.js$/);
  });

  test('Message helpers mutate and return the message', () => {
    const ack = { ack() {} };
    const m: any = core.createMessage({ a: 1 }, { acknowledger: { module: ack, ref: 1 } } as any);
    expect(m).toMatchObject({ data: { a: 1 }, metadata: {}, batcher: 'default', batchKey: 'default', batchMode: 'bulk', status: { kind: 'ok' } });
    expect(m.acknowledger.module).toBe(ack);
    expect(workers.Message.updateData(m, (d: any) => ({ ...d, b: 2 }))).toBe(m);
    expect(m.data).toEqual({ a: 1, b: 2 });
    expect(workers.Message.putData(m, 'x')).toBe(m);
    expect(m.data).toBe('x');
    expect(workers.Message.putBatcher(m, 'sink')).toBe(m);
    expect(workers.Message.putBatchKey(m, 'k')).toBe(m);
    expect(workers.Message.putBatchMode(m, 'flush')).toBe(m);
    expect(m).toMatchObject({ batcher: 'sink', batchKey: 'k', batchMode: 'flush' });
    expect(workers.Message.failed(m, 'nope')).toBe(m);
    expect(m.status).toEqual({ kind: 'failed', reason: 'nope' });
  });
});
