export { Pipeline, type Topology, type StopResult, type PipelineState, type RunResult } from './pipeline.js';
export { createMessage, type CreateMessageOptions } from './message.js';
export type { Producer, ProducerController } from './producer.js';
export { DummyProducer } from './producers/dummy-producer.js';
export { fromIterable, type FromIterableOptions } from './producers/from-iterable.js';
export type { PipelineOptions, ProcessorOptions, BatcherOptions, RateLimitingOptions, Runtime } from './options.js';
export type { RateLimitUpdate } from './topology/rate-limiter.js';
export type { PipelineStats, PipelineRates } from './stats.js';
export { progress, Progress, renderSummary, type ProgressOptions, type ProgressSummary, type ProgressStream } from './progress.js';
export { servePipelineHttp, type PipelineHttpServer, type PipelineHttpOptions } from './serve-http.js';
export { watchPipeline, PipelineWatch, failureReason, type FailureCount } from './watch.js';
export type { AckResult } from './caller-acknowledger.js';
export {
  channels,
  type TelemetryEvents,
  type ProcessorEvent,
  type MessageEvent,
  type BatchEvent,
  type AckEvent,
  type HandleFailedEvent,
  type TransformerErrorEvent,
} from './telemetry.js';
export {
  Message,
  ThroughwayError,
  type ThroughwayErrorCode,
  type SerializedError,
  definePipeline,
  isMessage,
  type ThroughwayMessage,
  type MessageStatus,
  type BatchInfo,
  type BatchMode,
  type Acknowledger,
  type AcknowledgerRef,
} from '@throughway/workers';
