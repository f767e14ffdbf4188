export { definePipeline, type PipelineHandlers, type SetupInfo, type HandlerShape } from './define-pipeline.js';
export {
  Message,
  isMessage,
  type ThroughwayMessage,
  type MessageStatus,
  type BatchMode,
  type Acknowledger,
  type AcknowledgerRef,
  type AckOp,
} from './message.js';
export type { BatchInfo, BatchTrigger } from './batch-info.js';
export { ThroughwayError, serializeError, type SerializedError, type ThroughwayErrorCode } from './errors.js';
export * from './writers/index.js';
