// Test helpers shared by the semantic suite. Everything here observes the pipeline from the main
// thread (acknowledger calls, diagnostics_channel telemetry, the handler's log file), so the same
// assertions hold for the 'inline' and the 'threads' runtime.
import diagnostics_channel from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, afterAll } from 'vitest';
import pino from 'pino';
import { Pipeline, createMessage, DummyProducer } from '@throughway/core';

export type Runtime = 'inline' | 'threads';
export const RUNTIMES: Runtime[] = ['inline', 'threads'];
export const SCRIPTED = new URL('./fixtures/scripted.ts', import.meta.url);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let seq = 0;
export function uniqueName(prefix: string): string {
  seq += 1;
  return `${prefix}-${process.pid}-${seq}-${Math.random().toString(36).slice(2, 7)}`;
}

export async function waitFor(pred: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(5);
  }
}

// ---------------------------------------------------------------------------------------------
// Acknowledger recording every ack() call

export interface AckCall {
  ref: unknown;
  successful: any[];
  failed: any[];
  t: number;
}

export interface RecorderOptions {
  /** 'merge' (default): configure returns { ...data, ...options }; 'none': no configure method;
   *  'throw': configure throws */
  configure?: 'merge' | 'none' | 'throw';
  /** ack() throws (or rejects, with 'reject') on its first N calls */
  throwOnFirst?: number;
  throwMode?: 'throw' | 'reject';
  /** declare `idsOnly: true`: the acknowledger reads no data, none comes back for it */
  idsOnly?: boolean;
}

export class AckRecorder {
  readonly calls: AckCall[] = [];
  readonly configureCalls: { ref: unknown; data: unknown; options: unknown }[] = [];
  readonly module: any;

  constructor(opts: RecorderOptions = {}) {
    const self = this;
    let throwsLeft = opts.throwOnFirst ?? 0;
    const mod: any = {
      ...(opts.idsOnly ? { idsOnly: true } : {}),
      ack(ref: unknown, successful: any[], failed: any[]) {
        self.calls.push({ ref, successful: [...successful], failed: [...failed], t: Date.now() });
        if (throwsLeft > 0) {
          throwsLeft -= 1;
          if (opts.throwMode === 'reject') return Promise.reject(new Error('ack exploded (async)'));
          throw new Error('ack exploded');
        }
        return undefined;
      },
    };
    const configure = opts.configure ?? 'merge';
    if (configure !== 'none') {
      mod.configure = (ref: unknown, data: unknown, options: unknown) => {
        self.configureCalls.push({ ref, data, options });
        if (configure === 'throw') throw new Error('configure exploded');
        return { ...(data as object), ...(options as object) };
      };
    }
    this.module = mod;
  }

  message(data: unknown, ref: unknown = 'r', ackData?: unknown, metadata?: Record<string, unknown>): any {
    return createMessage(data, {
      acknowledger: ackData === undefined ? { module: this.module, ref } : { module: this.module, ref, data: ackData },
      ...(metadata ? { metadata } : {}),
    } as any);
  }

  messages(datas: unknown[], ref: unknown = 'r'): any[] {
    return datas.map((d) => this.message(typeof d === 'object' && d !== null ? d : { id: d }, ref));
  }

  all(): any[] {
    return this.calls.flatMap((c) => [...c.successful, ...c.failed]);
  }
  count(): number {
    return this.calls.reduce((n, c) => n + c.successful.length + c.failed.length, 0);
  }
  ids(): unknown[] {
    return this.all().map((m) => m.data.id);
  }
  successIds(): unknown[] {
    return this.calls.flatMap((c) => c.successful.map((m) => m.data.id));
  }
  failedIds(): unknown[] {
    return this.calls.flatMap((c) => c.failed.map((m) => m.data.id));
  }
  find(id: unknown): any {
    return this.all().find((m) => m.data.id === id);
  }
  /** ack() calls as [successful ids, failed ids] */
  shape(): [unknown[], unknown[]][] {
    return this.calls.map((c) => [c.successful.map((m) => m.data.id), c.failed.map((m) => m.data.id)]);
  }
  async waitForCount(n: number, timeoutMs = 8000): Promise<void> {
    await waitFor(() => this.count() >= n, `${n} messages acked (have ${this.count()}: ${JSON.stringify(this.shape())})`, timeoutMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Telemetry

export const CHANNELS = [
  'throughway:processor',
  'throughway:batch',
  'throughway:ack',
  'throughway:handle-failed',
  'throughway:transformer-error',
] as const;

export class Telemetry {
  readonly events: Record<string, any[]> = {};
  private readonly subs: [string, (msg: unknown) => void][] = [];

  constructor(
    readonly pipeline: string,
    channels: readonly string[] = CHANNELS,
  ) {
    for (const name of channels) {
      this.events[name] = [];
      const fn = (msg: any) => {
        if (msg && msg.pipeline === pipeline) this.events[name]!.push({ ...msg, t: Date.now() });
      };
      diagnostics_channel.subscribe(name, fn);
      this.subs.push([name, fn]);
    }
  }
  get processor(): any[] {
    return this.events['throughway:processor'] ?? [];
  }
  get batch(): any[] {
    return this.events['throughway:batch'] ?? [];
  }
  get ack(): any[] {
    return this.events['throughway:ack'] ?? [];
  }
  get handleFailed(): any[] {
    return this.events['throughway:handle-failed'] ?? [];
  }
  get transformerError(): any[] {
    return this.events['throughway:transformer-error'] ?? [];
  }
  get message(): any[] {
    return this.events['throughway:message'] ?? [];
  }
  processorSizes(): number[] {
    return this.processor.map((e) => e.size);
  }
  /** batches as { batcher, key, ids, trigger, size, slot } */
  batches(): any[] {
    return this.batch.map((e) => ({
      batcher: e.batchInfo.batcher,
      key: e.batchInfo.batchKey,
      trigger: e.batchInfo.trigger,
      size: e.batchInfo.size,
      slot: e.slot,
      ids: [...e.successful, ...e.failed].map((m: any) => m.data.id),
      t: e.t,
    }));
  }
  close(): void {
    for (const [name, fn] of this.subs) diagnostics_channel.unsubscribe(name, fn);
    this.subs.length = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Logger capture (a real pino logger writing JSON lines into memory)

export interface CapturedLogger {
  logger: any;
  lines: any[];
  /** the JSON text of each line, as written */
  raw: string[];
  /** lines at warn (40) or above whose JSON text matches */
  warnings(match?: RegExp): any[];
}

export function captureLogger(): CapturedLogger {
  const lines: any[] = [];
  const raw: string[] = [];
  const stream = {
    write(s: string) {
      for (const line of s.split('\n')) {
        if (!line) continue;
        raw.push(line);
        try {
          lines.push(JSON.parse(line));
        } catch {
          lines.push({ level: 0, raw: line });
        }
      }
    },
  };
  const logger = pino({ level: 'trace' }, stream as any);
  return {
    logger,
    lines,
    raw,
    warnings(match?: RegExp) {
      return lines.filter((l) => l.level >= 40 && (!match || match.test(JSON.stringify(l))));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Handler log file

const tmpRoot = mkdtempSync(join(tmpdir(), 'throughway-test-'));
let fileSeq = 0;
export function tmpLog(): string {
  fileSeq += 1;
  return join(tmpRoot, `log-${fileSeq}.jsonl`);
}
export function readLog(path: string): any[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

export function statusText(m: any): string {
  return JSON.stringify(m?.status);
}

// ---------------------------------------------------------------------------------------------
// Pipeline harness: starts pipelines and always stops them after each test

export interface Harness {
  runtime: Runtime;
  start(options: any): Promise<any>;
  telemetry(pipeline: string, channels?: readonly string[]): Telemetry;
  /** base options with a unique name, the scripted handlers, a DummyProducer, one processor */
  options(over?: Record<string, any>, processors?: Record<string, any>): any;
}

export function useHarness(runtime: Runtime): Harness {
  const started: any[] = [];
  const telemetries: Telemetry[] = [];

  afterEach(async () => {
    for (const t of telemetries.splice(0)) t.close();
    const pipelines = started.splice(0);
    await Promise.all(
      pipelines.map((p) =>
        Promise.race([Promise.resolve().then(() => p.stop({ timeout: 3000 })).catch(() => undefined), sleep(8000)]),
      ),
    );
  });

  return {
    runtime,
    async start(options: any) {
      const p = await Pipeline.start(options);
      started.push(p);
      return p;
    },
    telemetry(pipeline: string, channels?: readonly string[]) {
      const t = new Telemetry(pipeline, channels);
      telemetries.push(t);
      return t;
    },
    options(over: Record<string, any> = {}, processors: Record<string, any> = {}) {
      return {
        name: uniqueName(runtime),
        handlers: SCRIPTED,
        producer: { module: new DummyProducer() },
        processors: { default: { concurrency: 1, maxDemand: 10, minDemand: 5, runtime, ...processors } },
        ...over,
      };
    },
  };
}

afterAll(() => {
  rmSync(tmpRoot, { recursive: true, force: true });
});

export function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
