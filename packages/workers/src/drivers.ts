/**
 * Database and broker drivers are optional peer dependencies: a user who writes only to Postgres
 * installs no native SQLite addon. A package that needs a driver loads it here, lazily, from its
 * own location, so that a missing one becomes an error that says what to install instead of a
 * bare ERR_MODULE_NOT_FOUND at import time.
 */
import { createRequire } from 'node:module';
import { ThroughwayError, thrownMessage } from './errors.js';

/** What a driver is needed for, for the error message. */
export interface DriverNeed {
  /** The npm package to install, e.g. `better-sqlite3`. */
  name: string;
  /** The semver range the package supports, e.g. `^12.11 || ^13`. */
  range: string;
  /** Who needs it, e.g. `sqliteQueue (@throughway/sqlite-producer)`. */
  user: string;
}

/**
 * The error for a driver that is not installed. For drivers loaded with `import()` (ESM-only
 * packages), throw this from the import's `catch` when `isMissingModule(error, need.name)`.
 *
 * @example
 * const nats = await import('@nats-io/transport-node').catch((error) => {
 *   throw isMissingModule(error, '@nats-io/transport-node') ? missingDriver(need, error) : error;
 * });
 */
export function missingDriver(need: DriverNeed, cause?: unknown): ThroughwayError {
  return new ThroughwayError(
    'ERR_THROUGHWAY_MISSING_DRIVER',
    `${need.user} needs the package ${need.name} (${need.range}), which is not installed. Install it beside Throughway: npm install ${need.name}`,
    { cause, details: { package: need.name, range: need.range } },
  );
}

/** True when `error` says that the package `name` itself (not one of its files) could not be found. */
export function isMissingModule(error: unknown, name: string): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (e.code !== 'MODULE_NOT_FOUND' && e.code !== 'ERR_MODULE_NOT_FOUND') return false;
  return typeof e.message === 'string' && (e.message.includes(`'${name}'`) || e.message.includes(`"${name}"`));
}

/**
 * Loads a CommonJS driver (`better-sqlite3`, `pg`) as the package at `from` would, i.e. with the
 * same node_modules lookup as an `import` written in that package. A driver that is installed
 * but fails to load (a native addon built for another Node version) is reported with its own
 * message and the package name.
 *
 * @example
 * const Database = requireDriver<typeof import('better-sqlite3')>(import.meta.url, {
 *   name: 'better-sqlite3', range: '^12.11 || ^13', user: 'sqliteQueue (@throughway/sqlite-producer)',
 * });
 */
export function requireDriver<T>(from: string | URL, need: DriverNeed): T {
  try {
    return createRequire(from)(need.name) as T;
  } catch (error) {
    if (isMissingModule(error, need.name)) throw missingDriver(need, error);
    throw new ThroughwayError(
      'ERR_THROUGHWAY_DRIVER_LOAD',
      `${need.user} could not load ${need.name}: ${thrownMessage(error)}` +
        (need.name === 'better-sqlite3' ? ' (a native addon: reinstall or rebuild it for this Node version, e.g. npm rebuild better-sqlite3)' : ''),
      { cause: error, details: { package: need.name } },
    );
  }
}
