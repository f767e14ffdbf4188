import { channel } from 'node:diagnostics_channel';
import type { BatchInfo, SerializedError, ThroughwayMessage } from '@throughway/workers';

/** `throughway:processor`: one processor call ended (published after its acks). */
export interface ProcessorEvent {
  pipeline: string;
  processor: string;
  slot: number;
  size: number;
  successful: number;
  failed: number;
  /** 0 unless a subscriber was listening when the call started. */
  durationMs: number;
}

/** `throughway:message`: one message after its processor call, with its processed data. */
export interface MessageEvent {
  pipeline: string;
  processor: string;
  message: ThroughwayMessage;
}

/** `throughway:batch`: one batch ended (published after its ack), messages as handleBatch left them. */
export interface BatchEvent {
  pipeline: string;
  batcher: string;
  slot: number;
  batchInfo: BatchInfo;
  successful: ThroughwayMessage[];
  failed: ThroughwayMessage[];
  durationMs: number;
}

/** `throughway:ack`: one `ack` call to an acknowledger. */
export interface AckEvent {
  pipeline: string;
  stage: 'processor' | 'batcher' | 'immediate';
  ref: unknown;
  successful: ThroughwayMessage[];
  failed: ThroughwayMessage[];
}

/** `throughway:handle-failed`: one `handleFailed` call (before the ack of its messages). */
export interface HandleFailedEvent {
  pipeline: string;
  stage: 'processor' | 'batcher';
  size: number;
  threw: boolean;
}

/** `throughway:transformer-error`: the transformer threw, or a producer emitted a non-message. */
export interface TransformerErrorEvent {
  pipeline: string;
  event: unknown;
  error: SerializedError;
}

/** Every channel's name and payload type, for typed subscribers. */
export interface TelemetryEvents {
  'throughway:processor': ProcessorEvent;
  'throughway:message': MessageEvent;
  'throughway:batch': BatchEvent;
  'throughway:ack': AckEvent;
  'throughway:handle-failed': HandleFailedEvent;
  'throughway:transformer-error': TransformerErrorEvent;
}

/**
 * Telemetry on `node:diagnostics_channel`, published on the main thread. Payloads are built
 * only when a channel has subscribers, so an unobserved pipeline pays one boolean check.
 *
 * @example
 * import diagnostics_channel from 'node:diagnostics_channel'
 * diagnostics_channel.subscribe('throughway:batch', (e) => {
 *   const { batchInfo, successful } = e as BatchEvent
 *   console.log(batchInfo.batchKey, successful.length)
 * })
 */
export const channels = Object.freeze({
  processor: channel('throughway:processor'),
  message: channel('throughway:message'),
  batch: channel('throughway:batch'),
  ack: channel('throughway:ack'),
  handleFailed: channel('throughway:handle-failed'),
  transformerError: channel('throughway:transformer-error'),
});
