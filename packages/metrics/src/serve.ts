import type { RequestListener } from 'node:http';
import { servePipelineHttp, type Pipeline, type PipelineHttpServer } from '@throughway/core';
import { onlyKeys, plainObject } from '@throughway/workers/internal';
import { createMetrics, type MetricsOptions } from './metrics.js';

export interface ServeMetricsOptions extends MetricsOptions {
  /** TCP port; 0 picks a free one (see `server.port`). @default 9464 */
  port?: number;
  /** Interface to bind. Anything but loopback exposes the metrics to the network: say so explicitly. @default '127.0.0.1' */
  host?: string;
}

/** `{ url, port, close() }`: `close()` stops serving and unregisters the metrics; it also runs by itself when the pipeline stops. */
export type MetricsServer = PipelineHttpServer;

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
  const metrics = createMetrics(pipeline, metricsOptions);
  const handler: RequestListener = (req, res) => {
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
  };
  return servePipelineHttp(pipeline, handler, { port, host, optionPath: 'serveMetrics', onClose: () => metrics.close() });
}
