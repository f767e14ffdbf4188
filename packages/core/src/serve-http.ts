import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { invalidOption } from '@throughway/workers/internal';
import type { Pipeline } from './pipeline.js';

/** An HTTP server that lives as long as its pipeline runs. */
export interface PipelineHttpServer {
  /** `http://host:port`, with the port actually bound (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Stops serving, ending open connections; also done by itself when the pipeline stops. Idempotent. */
  close(): Promise<void>;
}

export interface PipelineHttpOptions {
  port: number;
  host: string;
  /** The option path named in errors, e.g. `'serveMetrics'` gives `serveMetrics.port`. */
  optionPath: string;
  /** Runs once, first, when the server closes, or when `port`/`host` are invalid or listening fails: unsubscribe, stop timers, say goodbye. */
  onClose?: () => void;
}

/**
 * Listens with `handler` on `host:port` (checked first) and closes, leaving no socket, when
 * `pipeline` stops. The shared ground of `@throughway/metrics` and `@throughway/dashboard`.
 *
 * @example
 * const server = await servePipelineHttp(pipeline, (req, res) => res.end('ok'), { port: 0, host: '127.0.0.1', optionPath: 'myTool' })
 */
export async function servePipelineHttp(pipeline: Pipeline, handler: RequestListener, options: PipelineHttpOptions): Promise<PipelineHttpServer> {
  const { port, host, optionPath, onClose } = options;
  const server = createServer(handler);
  try {
    if (!Number.isInteger(port) || port < 0 || port > 65535) invalidOption(`${optionPath}.port`, 'an integer from 0 to 65535', port);
    if (typeof host !== 'string' || host === '') invalidOption(`${optionPath}.host`, 'a host name or address', host);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    onClose?.();
    throw error;
  }
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      onClose?.();
      server.close(() => resolve());
      // Keep-alive connections (scrapers, open pages) would hold close() open until they time out.
      server.closeAllConnections();
    }));
  void pipeline.whenStopped().then(close);
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`, port: bound, close };
}
