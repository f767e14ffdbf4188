/**
 * The demo's pino logger. On a terminal, lines are made readable (time, level, message, a few
 * fields) since nobody reads JSON in a demo; elsewhere they stay pino's JSON, for tools. Both go
 * through the progress line's stream so that they never garble it.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './args.js';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

function field(value: unknown): string {
  if (typeof value === 'string') return value;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

/** One JSON log line as `12:34:56 INFO  message key=value`. */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = new Date(typeof entry.time === 'number' ? entry.time : Date.now()).toTimeString().slice(0, 8);
  const level = LEVELS[entry.level as number] ?? String(entry.level);
  const extra = Object.entries(entry)
    .filter(([key]) => !SKIP.has(key))
    .map(([key, value]) => `${key}=${field(key === 'err' ? (value as { message?: unknown })?.message ?? value : value)}`);
  return `${time} ${level} ${String(entry.msg ?? '')}${extra.length > 0 ? `  ${extra.join(' ')}` : ''}\n`;
}

export function createLogger(level: LogLevel, stream: { write(chunk: string): boolean }, pretty: boolean): Logger {
  const destination = pretty ? { write: (chunk: string) => stream.write(prettyLine(chunk)) } : stream;
  return pino({ name: 'mystex-pizza', level }, destination);
}
