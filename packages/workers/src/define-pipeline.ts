import type { BatchInfo } from './batch-info.js';
import { ThroughwayError, describeValue } from './errors.js';
import type { ThroughwayMessage } from './message.js';

type MaybePromise<T> = T | Promise<T>;

/** Which thread a `setup` call is for. */
export interface SetupInfo {
  kind: 'processor' | 'batcher';
  batcher?: string;
  slot?: number;
}

/**
 * A pipeline's callbacks: the default export of a handler module. The module is loaded in every
 * thread that runs them (and once on the main thread with the inline runtime), so it keeps no
 * state that the main thread needs.
 */
export interface PipelineHandlers<C = any, D = any, B = any> {
  /** Once per thread before any other callback; a value it returns replaces `context` there. */
  setup?(context: C, info: SetupInfo): MaybePromise<C | void>;
  prepareMessages?(messages: ThroughwayMessage<D>[], context: C): MaybePromise<ThroughwayMessage<D>[]>;
  handleMessage(processor: string, message: ThroughwayMessage<D>, context: C): MaybePromise<ThroughwayMessage<any>>;
  /** `B`: the data `handleMessage` produces, as the batch receives it. */
  handleBatch?(batcher: string, messages: ThroughwayMessage<B>[], batchInfo: BatchInfo, context: C): MaybePromise<ThroughwayMessage<any>[]>;
  handleFailed?(messages: ThroughwayMessage<any>[], context: C): MaybePromise<ThroughwayMessage<any>[]>;
  /** Once per thread when the pipeline stops: close what `setup` opened. */
  teardown?(context: C): MaybePromise<void>;
}

/** Which optional callbacks a module defines; the coordinator checks it against the options. */
export interface HandlerShape {
  setup: boolean;
  prepareMessages: boolean;
  handleBatch: boolean;
  handleFailed: boolean;
  teardown: boolean;
}

const CALLBACKS = ['setup', 'prepareMessages', 'handleMessage', 'handleBatch', 'handleFailed', 'teardown'] as const;

/**
 * Declares a handler module. Checks the callbacks once, at load, so a typo fails at start.
 * `Context` types `context` in every callback (what `Pipeline.start({ context })` passes, or
 * what `setup` returns); `Data` types the data `handleMessage` receives (what the source emits);
 * `BatchData` the data `handleBatch` receives (what `handleMessage` produced).
 *
 * @example
 * // handlers.ts
 * import { definePipeline, Message } from '@throughway/workers'
 * export default definePipeline<{ table: string }, string>({
 *   handleMessage(_processor, message, context) {
 *     return Message.putData(message, { ...JSON.parse(message.data), table: context.table })
 *   },
 * })
 */
export function definePipeline<Context = any, Data = any, BatchData = any>(handlers: PipelineHandlers<Context, Data, BatchData>): PipelineHandlers<Context, Data, BatchData> {
  if (handlers === null || typeof handlers !== 'object') {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_HANDLERS', `definePipeline expected an object of callbacks, got ${describeValue(handlers)}`);
  }
  for (const key of Object.keys(handlers)) {
    if (!(CALLBACKS as readonly string[]).includes(key)) {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_HANDLERS', `definePipeline got an unknown callback \`${key}\`; the known ones are ${CALLBACKS.join(', ')}`);
    }
    const value = (handlers as unknown as Record<string, unknown>)[key];
    if (value !== undefined && typeof value !== 'function') {
      throw new ThroughwayError('ERR_THROUGHWAY_INVALID_HANDLERS', `Expected \`${key}\` to be a function, got ${describeValue(value)}`);
    }
  }
  if (typeof handlers.handleMessage !== 'function') {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_HANDLERS', 'definePipeline needs a `handleMessage` function');
  }
  return Object.freeze({ ...handlers });
}

export function shapeOf(handlers: PipelineHandlers): HandlerShape {
  return {
    setup: typeof handlers.setup === 'function',
    prepareMessages: typeof handlers.prepareMessages === 'function',
    handleBatch: typeof handlers.handleBatch === 'function',
    handleFailed: typeof handlers.handleFailed === 'function',
    teardown: typeof handlers.teardown === 'function',
  };
}
