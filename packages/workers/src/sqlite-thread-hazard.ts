/**
 * Node 24.19.0 to 24.21.x abort the whole process when a worker thread that used a
 * better-sqlite3 12 statement ends: node_object_wrap.h registers an environment cleanup hook in
 * every ObjectWrap, and removing it after the thread's Environment is gone fails
 * `Assertion failed: (env) != nullptr` in RemoveEnvironmentCleanupHook (nodejs/node#65446, fixed
 * in 24.22). better-sqlite3 13 (Node-API) is not affected but needs Node 22+. The abort comes with
 * no explanation, so the pipeline names it once, at start, instead.
 */
import { createRequire } from 'node:module';

const FIRST_BAD: readonly [number, number] = [24, 19];
const FIRST_FIXED: readonly [number, number] = [24, 22];

function majorMinor(version: string): [number, number] | undefined {
  const match = /^v?(\d+)\.(\d+)\./.exec(version);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

function before(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

function nodeAffected(nodeVersion: string): boolean {
  const node = majorMinor(nodeVersion);
  return node !== undefined && !before(node, FIRST_BAD) && before(node, FIRST_FIXED);
}

/**
 * The warning for running better-sqlite3 `sqliteVersion` in worker threads on Node
 * `nodeVersion`, or undefined when that pair is fine.
 *
 * @example
 * sqliteThreadHazard('24.20.0', '12.11.1') // 'Node 24.20.0 with better-sqlite3 12.11.1 ...'
 * sqliteThreadHazard('24.22.3', '12.11.1') // undefined
 */
export function sqliteThreadHazard(nodeVersion: string, sqliteVersion: string | undefined): string | undefined {
  const sqlite = sqliteVersion === undefined ? undefined : majorMinor(sqliteVersion);
  if (!nodeAffected(nodeVersion) || !sqlite || sqlite[0] !== 12) return undefined;
  return (
    `Node ${nodeVersion.replace(/^v/, '')} with better-sqlite3 ${sqliteVersion} in worker threads: the process aborts ` +
    `("Assertion failed: (env) != nullptr" in RemoveEnvironmentCleanupHook, nodejs/node#65446) when a thread that used ` +
    `a better-sqlite3 statement ends. Node 24.19.0 to 24.21.x are affected. Fix: upgrade Node to 24.22 or later ` +
    `(or use Node 22 or 26), or use better-sqlite3 13 (Node 22+).`
  );
}

/** The version of better-sqlite3 that `from` (a file URL or path) would load, if any. */
export function resolvedSqliteVersion(from: string | URL): string | undefined {
  try {
    const require = createRequire(from);
    return (require(require.resolve('better-sqlite3/package.json')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

let warned = false;

/**
 * Logs the Node 24.19-24.21 hazard once per process when the code at `from` would load
 * better-sqlite3 12 and is about to use it in worker threads. Returns whether it logged.
 *
 * @example
 * warnSqliteThreadHazard(handlersUrl, (message) => logger.warn(message))
 */
export function warnSqliteThreadHazard(from: string | URL, warn: (message: string) => void, nodeVersion = process.versions.node): boolean {
  // Resolving better-sqlite3 reads the file system (on every Pipeline.start): only where it matters.
  if (warned || !nodeAffected(nodeVersion)) return false;
  const message = sqliteThreadHazard(nodeVersion, resolvedSqliteVersion(from));
  if (message === undefined) return false;
  warned = true;
  warn(message);
  return true;
}
