import { pathToFileURL } from 'node:url';
import { ThroughwayError, thrownMessage } from './errors.js';
import type { PipelineHandlers, SetupInfo } from './define-pipeline.js';
import { definePipeline } from './define-pipeline.js';

let typescriptLoader: Promise<boolean> | undefined;

// Node 20 cannot import .ts; Node 22.18+/24 strip types natively but not every TypeScript
// feature (enums, `.js` specifiers that name .ts files). tsx (an optional peer dependency) handles
// both, so it is used when it is installed; without it we rely on the runtime's own type
// stripping, and a failed import says to install tsx. Resolves whether tsx was registered.
function ensureTypeScript(): Promise<boolean> {
  typescriptLoader ??= import('tsx/esm/api').then(
    (tsx: { register: () => unknown }) => {
      tsx.register();
      return true;
    },
    () => false,
  );
  return typescriptLoader;
}

export function toModuleUrl(handlers: string | URL): string {
  if (handlers instanceof URL) return handlers.href;
  if (handlers.startsWith('file:')) return handlers;
  return pathToFileURL(handlers).href;
}

/** Imports a handler module in the current thread and checks its default export. */
export async function loadHandlers(handlers: string): Promise<PipelineHandlers> {
  const typescript = /\.(c|m)?tsx?$/.test(handlers);
  const withTsx = typescript && (await ensureTypeScript());
  let mod: { default?: unknown };
  try {
    mod = (await import(handlers)) as { default?: unknown };
  } catch (error) {
    const hint =
      typescript && !withTsx
        ? ` (a .ts handler module needs tsx, an optional peer dependency of @throughway/workers that is not installed: npm install --save-dev tsx)`
        : '';
    throw new ThroughwayError('ERR_THROUGHWAY_HANDLERS_LOAD', `Could not load the handler module ${handlers}: ${thrownMessage(error)}${hint}`, { cause: error });
  }
  const value = mod.default;
  if (value === null || typeof value !== 'object' || typeof (value as PipelineHandlers).handleMessage !== 'function') {
    throw new ThroughwayError('ERR_THROUGHWAY_INVALID_HANDLERS', `The handler module ${handlers} must default-export definePipeline({ handleMessage, ... })`);
  }
  // Re-checked here: a module may export a plain object instead of going through definePipeline.
  return definePipeline(value as PipelineHandlers);
}

/**
 * Loads the handler module and runs `setup` for this thread: what every runtime does once per
 * thread before any other callback. Returns the context the later callbacks get.
 */
export async function initHandlers(url: string, context: unknown, info: SetupInfo): Promise<{ handlers: PipelineHandlers; context: unknown }> {
  const handlers = await loadHandlers(url);
  if (!handlers.setup) return { handlers, context };
  let replaced: unknown;
  try {
    replaced = await handlers.setup(context, info);
  } catch (error) {
    throw new ThroughwayError('ERR_THROUGHWAY_SETUP_FAILED', `setup failed in a ${info.kind} thread: ${thrownMessage(error)}`, { cause: error });
  }
  return { handlers, context: replaced === undefined ? context : replaced };
}
