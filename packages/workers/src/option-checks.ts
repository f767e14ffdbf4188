import { ThroughwayError, describeValue } from './errors.js';

/**
 * The option checks every package uses, so that an invalid option reads the same everywhere:
 * ``Expected `path` to be what, got value``, with the path and the value in `details`.
 */
export function invalidOption(path: string, expected: string, value: unknown): never {
  throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Expected \`${path}\` to be ${expected}, got ${describeValue(value)}`, {
    details: { path, received: value },
  });
}

export function plainObject(path: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalidOption(path, 'an object', value);
  return value as Record<string, unknown>;
}

/** Rejects a key that is not one of `keys`, naming its full path (`path` may be '' at the top). */
export function onlyKeys(path: string, value: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (keys.includes(key)) continue;
    const where = path ? `${path}.${key}` : key;
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_OPTION', `Unknown option \`${where}\`; the known ones${path ? ` in \`${path}\`` : ''} are ${keys.join(', ')}`, {
      details: { path: where, received: value[key] },
    });
  }
}

/** An integer from `min` up, or `fallback` when absent. */
export function integerOption(path: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) invalidOption(path, `an integer from ${min} and up`, value);
  return value;
}
