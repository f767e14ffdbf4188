import { channel } from 'node:diagnostics_channel';

/**
 * Telemetry on `node:diagnostics_channel`, published on the main thread. Payloads are built
 * only when a channel has subscribers, so an unobserved pipeline pays one boolean check.
 */
export const channels = Object.freeze({
  processor: channel('throughway:processor'),
  message: channel('throughway:message'),
  batch: channel('throughway:batch'),
  ack: channel('throughway:ack'),
  handleFailed: channel('throughway:handle-failed'),
  transformerError: channel('throughway:transformer-error'),
});
