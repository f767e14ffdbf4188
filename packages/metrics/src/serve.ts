import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pipeline } from '@throughway/core';
import { invalidOption, onlyKeys, plainObject } from '@throughway/workers/internal';
import { createMetrics, type MetricsOptions } from './metrics.js';

export interface ServeMetricsOptions extends MetricsOptions {
  /** TCP port; 0 picks a free one (see `server.port`). @default 9464 */
  port?: number;
  /** Interface to bind. Anything but loopback exposes the metrics to the network: say so explicitly. @default '127.0.0.1' */
  host?: string;
}

export interface MetricsServer {
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  /** Stops serving and unregisters the metrics; also done by itself when the pipeline stops. */
  close(): Promise<void>;
}

/**
 * Serves `pipeline`'s Prometheus metrics on `/metrics`, and `/healthz` (200 while the process
 * serves) and `/readyz` (200 while the pipeline runs, 503 once it drains or stopped). Closes
 * itself, leaving no socket, when the pipeline stops.
 *
 * @example
 * const server = await serveMetrics(pipeline, { port: 9464 })
 * // curl http://127.0.0.1:9464/metrics
 */
export async function serveMetrics(pipeline: Pipeline, options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  onlyKeys('serveMetrics', plainObject('serveMetrics', options), ['port', 'host', 'registry', 'sources']);
  const { port = 9464, host = '127.0.0.1', ...metricsOptions } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) invalidOption('serveMetrics.port', 'an integer from 0 to 65535', port);
  if (typeof host !== 'string' || host === '') invalidOption('serveMetrics.host', 'a host name or address', host);
  const metrics = createMetrics(pipeline, metricsOptions);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${error.message}\n`),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = pipeline.state === 'running';
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${pipeline.state}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
    }
  });
  try {
    await listen(server, port, host);
  } catch (error) {
    metrics.close();
    throw error;
  }
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      metrics.close();
      server.close(() => resolve());
      // Keep-alive connections of scrapers would hold close() open until they time out.
      server.closeAllConnections();
    }));
  void pipeline.whenStopped().then(close);
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`, port: bound, close };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
