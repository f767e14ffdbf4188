// Type tests: checked by tsc (vitest typecheck), never run. They pin down what the public types
// promise: typed data and context in handler modules, Message helpers that follow the data,
// option types that catch mistakes, and the exported payload, stats and error-code types.
import { describe, expectTypeOf, test } from 'vitest';
import {
  Message,
  Pipeline,
  ThroughwayError,
  definePipeline,
  fromIterable,
  type BatchEvent,
  type BatchInfo,
  type PipelineOptions,
  type PipelineStats,
  type RunResult,
  type StopResult,
  type TelemetryEvents,
  type ThroughwayErrorCode,
  type ThroughwayMessage,
} from '@throughway/core';

interface Order {
  sku: string;
  qty: number;
}

describe('definePipeline', () => {
  test('types data and context where the user says so', () => {
    definePipeline<{ table: string }, Order, { sku: string; total: number }>({
      handleMessage(processor, message, context) {
        expectTypeOf(processor).toEqualTypeOf<string>();
        expectTypeOf(message.data).toEqualTypeOf<Order>();
        expectTypeOf(context.table).toEqualTypeOf<string>();
        return Message.putData(message, { sku: message.data.sku, total: message.data.qty });
      },
      handleBatch(_batcher, messages, info, context) {
        expectTypeOf(messages[0]!.data.total).toEqualTypeOf<number>();
        expectTypeOf(info).toEqualTypeOf<BatchInfo>();
        expectTypeOf(context).toEqualTypeOf<{ table: string }>();
        return messages;
      },
      setup(context) {
        expectTypeOf(context).toEqualTypeOf<{ table: string }>();
      },
    });
  });

  test('rejects unknown callbacks and wrong returns', () => {
    // @ts-expect-error handleMessage must return a message
    definePipeline({ handleMessage: () => 42 });
    // @ts-expect-error a typo in a callback name
    definePipeline({ handleMessage: (_p: string, m: ThroughwayMessage) => m, handleBtach: () => [] });
  });
});

describe('Message helpers', () => {
  test('putData and updateData follow the new data; the others keep the message type', () => {
    const m = {} as ThroughwayMessage<string>;
    expectTypeOf(Message.putData(m, { n: 1 })).toEqualTypeOf<ThroughwayMessage<{ n: number }>>();
    expectTypeOf(Message.updateData(m, (s) => s.length)).toEqualTypeOf<ThroughwayMessage<number>>();
    Message.updateData(m, (s) => expectTypeOf(s).toEqualTypeOf<string>());
    expectTypeOf(Message.failed(m, 'reason')).toEqualTypeOf<ThroughwayMessage<string>>();
    expectTypeOf(Message.putBatchKey(m, 'k')).toEqualTypeOf<ThroughwayMessage<string>>();
    // @ts-expect-error batch modes are 'bulk' | 'flush'
    Message.putBatchMode(m, 'later');
  });
});

describe('Pipeline.start options', () => {
  test('context is typed; a bare producer is not options', () => {
    const options: PipelineOptions<{ table: string }> = {
      name: 'p',
      handlers: new URL('file:///handlers.js'),
      producer: { module: fromIterable([1, 2]) },
      processors: { default: { runtime: 'inline' } },
      context: { table: 'orders' },
    };
    expectTypeOf(Pipeline.start(options)).toEqualTypeOf<Promise<Pipeline>>();
    // @ts-expect-error context does not match the declared Context
    const wrong: PipelineOptions<{ table: string }> = { ...options, context: { table: 1 } };
    void wrong;
    // @ts-expect-error the producer goes under `module`
    void Pipeline.start({ name: 'p', handlers: '/h.js', producer: fromIterable([1]), processors: { default: {} } });
    // @ts-expect-error runtime is 'inline' | 'threads'
    void Pipeline.start({ ...options, processors: { default: { runtime: 'fibers' } } });
  });

  test('done, run, stats and telemetry payloads are typed', () => {
    const p = {} as Pipeline;
    expectTypeOf(p.done).toEqualTypeOf<Promise<StopResult>>();
    expectTypeOf(Pipeline.run).returns.toEqualTypeOf<Promise<RunResult>>();
    expectTypeOf<RunResult['failures']>().toEqualTypeOf<Record<string, number>>();
    expectTypeOf(p.stats()).toEqualTypeOf<PipelineStats>();
    expectTypeOf<PipelineStats['acks']['failures']>().toEqualTypeOf<Record<string, number>>();
    expectTypeOf<TelemetryEvents['throughway:batch']>().toEqualTypeOf<BatchEvent>();
    expectTypeOf<BatchEvent['batchInfo']>().toEqualTypeOf<BatchInfo>();
  });
});

describe('ThroughwayErrorCode', () => {
  test('codes are a closed union', () => {
    expectTypeOf<ThroughwayError['code']>().toEqualTypeOf<ThroughwayErrorCode>();
    expectTypeOf<'ERR_THROUGHWAY_INVALID_OPTION'>().toMatchTypeOf<ThroughwayErrorCode>();
    // @ts-expect-error not a code of the library
    new ThroughwayError('ERR_THROUGHWAY_NOPE', 'x');
  });
});
