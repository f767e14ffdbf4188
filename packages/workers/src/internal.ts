/**
 * The coordinator's view of this package: runners, codecs and thread entry points. Not part of
 * the API a handler module uses; `@throughway/core` imports it as `@throughway/workers/internal`.
 */
export { runProcessorCall, type ProcessorScope } from './processor-runner.js';
export { runBatch } from './batch-runner.js';
export { isThenable } from './handle-failed.js';
export { initHandlers, loadHandlers, toModuleUrl } from './load-handlers.js';
export { shapeOf, type HandlerShape } from './define-pipeline.js';
export { concatBatches, datasAsJson, decodeValue, decodeValues, encodeValues, isEmpty, type Slice } from './payload-codec.js';
export { FailureCollector, failureKey } from './failures.js';
export { OK } from './message.js';
export { toReason, describeValue, errorText, reviveError, reviveThrown, thrownMessage } from './errors.js';
export { invalidOption, plainObject, onlyKeys, integerOption } from './option-checks.js';
export type * from './runner-types.js';
export { cell, columnOf } from './runner-types.js';
export type * from './thread-config.js';
export { requireDriver, missingDriver, isMissingModule, type DriverNeed } from './drivers.js';
export { sqliteThreadHazard, resolvedSqliteVersion, warnSqliteThreadHazard } from './sqlite-thread-hazard.js';

/** The Piscina task module of processor threads. */
export const processorTaskUrl: URL = new URL('./processor-task.js', import.meta.url);
/** The module each batch worker thread runs. */
export const batchWorkerUrl: URL = new URL('./batch-worker.js', import.meta.url);
