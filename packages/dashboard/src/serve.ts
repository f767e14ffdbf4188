import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { servePipelineHttp, type Pipeline } from '@throughway/core';
import { invalidOption, onlyKeys, plainObject } from '@throughway/workers/internal';
import { Snapshots } from './snapshot.js';

export interface ServeDashboardOptions {
  /** TCP port; 0 picks a free one (see `server.port`). @default 4010 */
  port?: number;
  /** Interface to bind. Anything but loopback shows the page to the network: say so explicitly. @default '127.0.0.1' */
  host?: string;
  /** Show a control that changes the rate limit (through `updateRateLimiting`). @default false */
  allowControl?: boolean;
  /** Milliseconds between updates pushed to the page. @default 1000 */
  interval?: number;
}

export interface DashboardServer {
  /** `http://host:port/`, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  /** Stops serving (open pages are disconnected); also done by itself when the pipeline stops. */
  close(): Promise<void>;
}

/** The page and its two assets, shipped in the package's `assets/` folder and read once. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
const assetsDir = new URL('../assets/', import.meta.url);
let assetCache: Map<string, Buffer> | undefined;
function asset(file: string): Buffer {
  assetCache ??= new Map(Object.values(ASSETS).map((a) => [a.file, readFileSync(new URL(a.file, assetsDir))]));
  return assetCache.get(file)!;
}

/** A rate-limit change is a few bytes of JSON; anything longer is refused unread. */
const MAX_BODY = 1024;

/**
 * Serves a live dashboard of `pipeline`: its topology as a graph (producers → processors →
 * batchers → batch slots) with each stage's throughput, load and in-flight count, a throughput
 * chart over the last five minutes, failures by reason, and the rate limit (with a control to
 * change it when `allowControl` is true). Updates reach the page by server-sent events; the page
 * and its script are files of this package (no build step, no network). Closes by itself when
 * the pipeline stops.
 *
 * @example
 * const dashboard = await serveDashboard(pipeline, { port: 4010 })
 * console.log(`dashboard at ${dashboard.url}`)
 */
export async function serveDashboard(pipeline: Pipeline, options: ServeDashboardOptions = {}): Promise<DashboardServer> {
  onlyKeys('serveDashboard', plainObject('serveDashboard', options), ['port', 'host', 'allowControl', 'interval']);
  const { port = 4010, host = '127.0.0.1', allowControl = false, interval = 1000 } = options;
  if (typeof allowControl !== 'boolean') invalidOption('serveDashboard.allowControl', 'a boolean', allowControl);
  if (!Number.isInteger(interval) || interval < 100 || interval > 60_000) invalidOption('serveDashboard.interval', 'an integer from 100 to 60000 (ms)', interval);

  const snapshots = new Snapshots(pipeline, allowControl);
  const clients = new Set<ServerResponse>();
  const timer = setInterval(() => {
    const data = `data: ${JSON.stringify(snapshots.tick())}\n\n`;
    for (const res of clients) res.write(data);
  }, interval);
  // The server's socket keeps the process up while it serves; the ticker alone must not.
  timer.unref();
  const onClose = (): void => {
    clearInterval(timer);
    // The page's last view: the pipeline stopped, with its final counters.
    const data = `data: ${JSON.stringify(snapshots.tick())}\n\n`;
    for (const res of clients) res.end(data);
    clients.clear();
    snapshots.close();
  };

  const server = await servePipelineHttp(
    pipeline,
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'POST' && path === '/api/rate-limit') return changeRateLimit(pipeline, allowControl, req, res);
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n');
      const file = ASSETS[path];
      if (file) return send(res, 200, file.type, asset(file.file));
      if (path === '/api/snapshot') return send(res, 200, 'application/json', JSON.stringify({ ...snapshots.latest, history: snapshots.history }));
      if (path === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        res.write(`retry: 2000\ndata: ${JSON.stringify({ ...snapshots.latest, history: snapshots.history })}\n\n`);
        clients.add(res);
        req.on('close', () => clients.delete(res));
        return;
      }
      send(res, 404, 'text/plain', 'not found\n');
    },
    { port, host, optionPath: 'serveDashboard', onClose },
  );
  return { url: `${server.url}/`, port: server.port, close: server.close };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(body);
}

/**
 * `POST /api/rate-limit` with `{ allowedMessages?, interval? }` as JSON. Only with `allowControl`;
 * the JSON content type is required so that another site's page cannot send it without a CORS
 * preflight, which this server never grants.
 */
function changeRateLimit(pipeline: Pipeline, allowControl: boolean, req: IncomingMessage, res: ServerResponse): void {
  if (!allowControl) return send(res, 403, 'application/json', JSON.stringify({ error: 'control is off: start the dashboard with allowControl: true' }));
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return send(res, 415, 'application/json', JSON.stringify({ error: 'send JSON (content-type: application/json)' }));
  let body = '';
  let tooLong = false;
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => {
    body += chunk;
    if (body.length > MAX_BODY) {
      tooLong = true;
      req.destroy();
    }
  });
  req.on('end', () => {
    if (tooLong) return;
    let update: { allowedMessages?: unknown; interval?: unknown };
    try {
      update = JSON.parse(body) as typeof update;
    } catch {
      return send(res, 400, 'application/json', JSON.stringify({ error: 'the body is not JSON' }));
    }
    try {
      const change: { allowedMessages?: number; interval?: number } = {};
      if (update?.allowedMessages !== undefined) change.allowedMessages = update.allowedMessages as number;
      if (update?.interval !== undefined) change.interval = update.interval as number;
      // reset: the new limit is in force now, not from the next interval, so the page shows it take effect.
      pipeline.updateRateLimiting({ ...change, reset: true });
      send(res, 200, 'application/json', JSON.stringify(pipeline.getRateLimiting()));
    } catch (error) {
      const e = error as { code?: string; message?: string };
      send(res, e.code === 'ERR_THROUGHWAY_RATE_LIMITING_DISABLED' ? 409 : 400, 'application/json', JSON.stringify({ error: e.message, code: e.code }));
    }
  });
}
