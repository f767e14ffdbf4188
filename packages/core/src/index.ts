export { Pipeline, type Topology, type StopResult } from './pipeline.js';
export { createMessage, type CreateMessageOptions } from './message.js';
export type { Producer, ProducerController } from './producer.js';
export { DummyProducer } from './producers/dummy-producer.js';
export { fromIterable, type FromIterableOptions } from './producers/from-iterable.js';
export type { PipelineOptions, ProcessorOptions, BatcherOptions, RateLimitingOptions, Runtime } from './options.js';
export type { RateLimitUpdate } from './topology/rate-limiter.js';
export type { PipelineStats } from './stats.js';
export type { AckResult } from './caller-acknowledger.js';
export { channels } from './telemetry.js';
export {
  Message,
  ThroughwayError,
  definePipeline,
  isMessage,
  type ThroughwayMessage,
  type MessageStatus,
  type BatchInfo,
  type BatchMode,
  type Acknowledger,
  type AcknowledgerRef,
} from '@throughway/workers';
