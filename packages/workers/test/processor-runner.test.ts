// The processor runner (`runProcessorCall`), shared by the inline runtime and every processor
// thread: synchronous callbacks give the output itself, a thenable from any callback continues
// asynchronously from that message on, and both ways give the same statuses, routing and values.
import { describe, expect, test } from 'vitest';
import { Message, definePipeline, type PipelineHandlers, type ThroughwayMessage } from '../src/index.js';
import { runProcessorCall, type ProcessorScope } from '../src/processor-runner.js';
import { cell, type CallOutput } from '../src/runner-types.js';

type Mode = 'ok' | 'throw' | 'junk' | 'fail' | 'route';
/** Each message's data is `{ id, mode }`; `later` makes that message's handler return a promise. */
type Data = { id: number; mode: Mode; later?: boolean };

function act(message: ThroughwayMessage, data: Data): ThroughwayMessage {
  switch (data.mode) {
    case 'throw':
      throw new Error(`boom ${data.id}`);
    case 'junk':
      return 42 as unknown as ThroughwayMessage;
    case 'fail':
      return Message.failed(message, `rejected ${data.id}`);
    case 'route':
      return Message.putBatchKey(Message.putBatcher(message, 'insert'), `k${data.id}`);
    default:
      return Message.putData(message, data.id * 10);
  }
}

function scope(handlers: PipelineHandlers): ProcessorScope {
  return { handlers, context: {}, processor: 'default', batchers: ['default', 'insert'] };
}

const handleMessage = (_p: string, message: ThroughwayMessage) => {
  const data = message.data as Data;
  return data.later ? new Promise<ThroughwayMessage>((resolve, reject) => setTimeout(() => {
    try {
      resolve(act(message, data));
    } catch (error) {
      reject(error);
    }
  }, 1)) : act(message, data);
};

const datas: Data[] = [
  { id: 1, mode: 'ok' },
  { id: 2, mode: 'throw' },
  { id: 3, mode: 'junk' },
  { id: 4, mode: 'fail' },
  { id: 5, mode: 'route' },
  { id: 6, mode: 'ok' },
];

/** What a call's output says about each message, comparable across the sync and async paths. */
function summary(out: CallOutput) {
  return {
    statuses: (out.statuses ?? []).map((s) => (s.kind === 'ok' ? 'ok' : s.kind === 'failed' ? `failed: ${s.reason}` : `error: ${s.error.message}`)),
    batchers: out.batchers,
    batchKeys: out.batchKeys,
    values: out.values?.map(([data]) => data),
    failures: out.failures?.map((f) => `${f.stage} ${f.count} ${f.error.message}`).sort(),
  };
}

describe('runProcessorCall', () => {
  test('synchronous callbacks: the output comes back as a value, not a promise', () => {
    const out = runProcessorCall(scope(definePipeline({ handleMessage })), { datas });
    expect(out).not.toBeInstanceOf(Promise);
    const s = summary(out as CallOutput);
    expect(s.statuses).toEqual(['ok', 'error: boom 2', 'failed: expected a Message from handleMessage, got `42` (number)', 'failed: rejected 4', 'ok', 'ok']);
    expect(s.batchers).toEqual({ each: ['default', 'default', 'default', 'default', 'insert', 'default'] });
    expect(s.batchKeys).toEqual({ each: ['default', 'default', 'default', 'default', 'k5', 'default'] });
    // routed: the messages that go on to a batcher carry their processed data
    expect(s.values).toEqual([10, { id: 5, mode: 'route' }, 60]);
    expect(s.failures).toEqual(['handleMessage 1 boom 2', 'handleMessage 1 expected a Message from handleMessage, got `42` (number)']);
  });

  test('a handler that returns a promise midway: the call goes on from that message, with the same outcome', async () => {
    const sync = summary(runProcessorCall(scope(definePipeline({ handleMessage })), { datas }) as CallOutput);
    for (const later of [[1], [2], [3, 4], [6], [1, 2, 3, 4, 5, 6]]) {
      const mixed = datas.map((d) => (later.includes(d.id) ? { ...d, later: true } : d));
      const out = runProcessorCall(scope(definePipeline({ handleMessage })), { datas: mixed });
      expect(out, `later ${later}`).toBeInstanceOf(Promise);
      const s = summary(await out);
      expect({ ...s, values: s.values?.map((v) => (typeof v === 'object' ? (v as Data).id : v)) }, `later ${later}`).toEqual({ ...sync, values: [10, 5, 60] });
    }
  });

  test('prepareMessages, synchronous or a promise: the same messages handled; a wrong list or a rejection fails the whole call', async () => {
    const ids: number[][] = [];
    const prepare = (later: boolean, result: 'same' | 'short' | 'throw') => (messages: ThroughwayMessage[]) => {
      ids.push(messages.map((m) => (m.data as Data).id));
      const value = () => {
        if (result === 'throw') throw new Error('prepare exploded');
        return result === 'short' ? messages.slice(1) : messages;
      };
      return later ? new Promise<ThroughwayMessage[]>((resolve, reject) => setTimeout(() => {
        try {
          resolve(value());
        } catch (error) {
          reject(error);
        }
      }, 1)) : value();
    };
    const okDatas: Data[] = [{ id: 1, mode: 'ok' }, { id: 2, mode: 'ok' }];
    for (const later of [false, true]) {
      const ok = await runProcessorCall(scope(definePipeline({ handleMessage, prepareMessages: prepare(later, 'same') })), { datas: okDatas });
      expect(ok.statuses, `prepare later=${later}`).toBeUndefined();
      const short = await runProcessorCall(scope(definePipeline({ handleMessage, prepareMessages: prepare(later, 'short') })), { datas: okDatas });
      expect(summary(short).statuses).toEqual(['failed: prepareMessages must return a list of 2 messages, got a list of 1', 'failed: prepareMessages must return a list of 2 messages, got a list of 1']);
      const threw = await runProcessorCall(scope(definePipeline({ handleMessage, prepareMessages: prepare(later, 'throw') })), { datas: okDatas });
      expect(summary(threw).statuses).toEqual(['error: prepare exploded', 'error: prepare exploded']);
      expect(summary(threw).failures).toEqual(['prepareMessages 2 prepare exploded']);
    }
    expect(ids).toEqual(Array.from({ length: 6 }, () => [1, 2]));
  });

  test('handleFailed runs over the failed messages either way, and a failed message stays failed', async () => {
    const seen: number[][] = [];
    const handlers = definePipeline({
      handleMessage,
      handleFailed(messages: ThroughwayMessage[]) {
        seen.push(messages.map((m) => (m.data as Data).id));
        return messages.map((m) => Message.putData(m, 'annotated'));
      },
    });
    for (const data of [datas, datas.map((d) => ({ ...d, later: true }))]) {
      const out = await runProcessorCall(scope(handlers), { datas: data });
      expect(out.handleFailed).toEqual({ size: 3, threw: false });
      expect(summary(out).statuses?.filter((s) => s !== 'ok').length).toBe(3);
    }
    expect(seen).toEqual([[2, 3, 4], [2, 3, 4]]);
  });

  test('crossing threads: repeating batch keys go as a dictionary, values grouped by batcher and key, each group in message order', () => {
    type Routed = { id: number; key: string; fail?: boolean };
    const route = definePipeline({
      handleMessage(_p, message) {
        const d = message.data as Routed;
        return d.fail ? Message.failed(message, 'no') : Message.putBatchKey(message, d.key);
      },
    });
    const keys = ['x', 'y', 'z'];
    const routed: Routed[] = Array.from({ length: 12 }, (_, id) => ({ id, key: keys[id % 3]!, ...(id === 4 ? { fail: true } : {}) }));
    // Message 4 fails (its key stays 'default'); 4 and 7 are wanted by their acknowledger.
    const call = { datas: routed, want: [4, 7] };
    const crossing = runProcessorCall({ ...scope(route), crossesThreads: true }, call) as CallOutput;
    expect(crossing.batchKeys).toEqual({ keys: ['x', 'y', 'z', 'default'], at: [0, 1, 2, 0, 3, 2, 0, 1, 2, 0, 1, 2] });
    expect(crossing.batchers).toEqual({ all: 'default' });
    expect(crossing.sent).toEqual([0, 3, 6, 9, 1, 7, 10, 2, 5, 8, 11, 4]);
    expect(crossing.values!.map(([d]) => (d as Routed).id)).toEqual(crossing.sent);
    for (let i = 0; i < 12; i++) expect(cell(crossing.batchKeys!, i)).toBe(i === 4 ? 'default' : keys[i % 3]);

    // Inline (handed over as they are): the columns and the values as the messages came.
    const inline = runProcessorCall(scope(route), call) as CallOutput;
    expect(inline.batchKeys).toEqual({ each: ['x', 'y', 'z', 'x', 'default', 'z', 'x', 'y', 'z', 'x', 'y', 'z'] });
    expect(inline.sent).toBeUndefined();
    expect(inline.values!.map(([d]) => (d as Routed).id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

    // Keys already in runs, or mostly distinct: no reordering, no dictionary.
    const runs = runProcessorCall({ ...scope(route), crossesThreads: true }, { datas: routed.map((d) => ({ id: d.id, key: d.id < 6 ? 'x' : 'y' })) }) as CallOutput;
    expect(runs.sent).toBeUndefined();
    expect(runs.batchKeys).toEqual({ keys: ['x', 'y'], at: [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1] });
    const distinct = runProcessorCall({ ...scope(route), crossesThreads: true }, { datas: routed.map((d) => ({ id: d.id, key: `k${d.id % 7}` })) }) as CallOutput;
    expect(distinct.batchKeys).toEqual({ each: routed.map((d) => `k${d.id % 7}`) });
    expect(distinct.sent).toEqual([0, 7, 1, 8, 2, 9, 3, 10, 4, 11, 5, 6]);
  });
});
