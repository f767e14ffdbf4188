import type { MessageStatus } from './message.js';

/**
 * Every code a `ThroughwayError` carries, across all packages (listed with their meaning in the
 * README's Errors table). A new code is added here first, so callers can switch on it exhaustively.
 */
export type ThroughwayErrorCode =
  | 'ERR_THROUGHWAY_INVALID_OPTION'
  | 'ERR_THROUGHWAY_INVALID_HANDLERS'
  | 'ERR_THROUGHWAY_HANDLERS_LOAD'
  | 'ERR_THROUGHWAY_SETUP_FAILED'
  | 'ERR_THROUGHWAY_TEARDOWN_FAILED'
  | 'ERR_THROUGHWAY_INVALID_MESSAGE'
  | 'ERR_THROUGHWAY_INVALID_ARGUMENT'
  | 'ERR_THROUGHWAY_INVALID_RETURN'
  | 'ERR_THROUGHWAY_NOT_RUNNING'
  | 'ERR_THROUGHWAY_RATE_LIMITING_DISABLED'
  | 'ERR_THROUGHWAY_THREAD_DIED'
  | 'ERR_THROUGHWAY_DATA_NOT_CLONEABLE'
  | 'ERR_THROUGHWAY_UNKNOWN_TABLE'
  | 'ERR_THROUGHWAY_UNKNOWN_COLUMN'
  | 'ERR_THROUGHWAY_INVALID_VALUE'
  | 'ERR_THROUGHWAY_COUNT_MISMATCH'
  | 'ERR_THROUGHWAY_SQLITE_SCHEMA'
  | 'ERR_THROUGHWAY_INVALID_STATE'
  | 'ERR_THROUGHWAY_PRODUCER_TERMINATED'
  | 'ERR_THROUGHWAY_SQLITE_STORE_THREAD'
  | 'ERR_THROUGHWAY_STOPPED'
  | 'ERR_THROUGHWAY_MISSING_DRIVER'
  | 'ERR_THROUGHWAY_DRIVER_LOAD'
  | 'ERR_THROUGHWAY_POSTGRES_SCHEMA'
  | 'ERR_THROUGHWAY_RABBITMQ_CONNECT'
  | 'ERR_THROUGHWAY_RABBITMQ_DISCONNECTED'
  | 'ERR_THROUGHWAY_RABBITMQ_SETUP'
  | 'ERR_THROUGHWAY_SQLITE_OPEN'
  | 'ERR_THROUGHWAY_NATS_CONNECT'
  | 'ERR_THROUGHWAY_NATS_CONSUMER'
  | 'ERR_THROUGHWAY_NATS_DEAD_LETTER'
  | 'ERR_THROUGHWAY_NATS_DISCONNECTED'
  | 'ERR_THROUGHWAY_NATS_PULL';

/**
 * The one error class the library raises. Callers branch on `code`, never on `instanceof`:
 * a class does not survive a thread hop, a code does.
 *
 * @example
 * try { await Pipeline.start(options) } catch (error) {
 *   if ((error as ThroughwayError).code === 'ERR_THROUGHWAY_INVALID_OPTION') console.error(error.message)
 * }
 */
export class ThroughwayError extends Error {
  readonly code: ThroughwayErrorCode;
  details?: unknown;

  constructor(code: ThroughwayErrorCode, message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ThroughwayError';
    this.code = code;
    if (options.details !== undefined) this.details = options.details;
  }
}

/** An error as plain data, the only form in which errors cross threads and reach acknowledgers. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

/** Turns anything thrown into plain data, keeping `code` when the thrown value has one. */
export function serializeError(error: unknown): SerializedError {
  if (error !== null && typeof error === 'object') {
    const e = error as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown };
    const out: SerializedError = {
      name: typeof e.name === 'string' ? e.name : 'Error',
      message: typeof e.message === 'string' ? e.message : String(error),
    };
    if (typeof e.stack === 'string') out.stack = e.stack;
    if (typeof e.code === 'string' || typeof e.code === 'number') out.code = String(e.code);
    return out;
  }
  return { name: 'Error', message: String(error) };
}

/** A failure reason that is an Error is kept as `{ name, message }` so it survives threads and JSON. */
export function toReason(reason: unknown): unknown {
  if (reason instanceof Error) return { name: reason.name, message: reason.message };
  return reason;
}

/** What a caught value says of itself: an Error's message, else the value as a string. */
export function thrownMessage(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/** A short, safe description of a value for error messages: `0 (number)`, `an object`, ... */
export function describeValue(value: unknown): string {
  if (value === null) return '`null`';
  if (value === undefined) return '`undefined`';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  switch (typeof value) {
    case 'string':
      return `\`${JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value)}\` (string)`;
    case 'number':
    case 'boolean':
    case 'bigint':
      return `\`${String(value)}\` (${typeof value})`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  }
}

/**
 * The text stored as a failed row's `last_error` by the queue sources: the failure reason if it
 * is a string, the message of an Error reason or of a thrown error, else the reason as JSON.
 *
 * @example
 * errorText({ kind: 'failed', reason: { code: 'E_RATE' } }) // '{"code":"E_RATE"}'
 */
export function errorText(status: MessageStatus): string {
  if (status.kind === 'failed') {
    const reason = status.reason;
    if (typeof reason === 'string') return reason;
    if (reason !== null && typeof reason === 'object' && typeof (reason as { message?: unknown }).message === 'string' && Object.keys(reason).every((k) => k === 'name' || k === 'message')) {
      return (reason as { message: string }).message;
    }
    return toJson(reason);
  }
  if (status.kind === 'error') {
    const e = status.error as { message?: unknown } | undefined;
    return typeof e?.message === 'string' ? e.message : toJson(e);
  }
  return 'failed';
}

function toJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Rebuilds a `ThroughwayError` from its plain form after a thread hop, keeping its code (or
 * giving `fallbackCode` to an error that had none) and the thread's stack.
 */
export function reviveError(error: SerializedError, fallbackCode: ThroughwayErrorCode): ThroughwayError {
  const code = error.code?.startsWith('ERR_THROUGHWAY_') ? (error.code as ThroughwayErrorCode) : fallbackCode;
  const revived = new ThroughwayError(code, error.message);
  if (error.stack) revived.stack = error.stack;
  return revived;
}

/**
 * Rebuilds any error after a thread hop: a library error as a `ThroughwayError` with its code,
 * anything else (`SQLITE_BUSY`, a TypeError) as an `Error` keeping its name, code and stack.
 */
export function reviveThrown(error: SerializedError): Error {
  if (error.code?.startsWith('ERR_THROUGHWAY_')) return reviveError(error, error.code as ThroughwayErrorCode);
  const revived = new Error(error.message) as Error & { code?: string };
  revived.name = error.name;
  if (error.code !== undefined) revived.code = error.code;
  if (error.stack) revived.stack = error.stack;
  return revived;
}
