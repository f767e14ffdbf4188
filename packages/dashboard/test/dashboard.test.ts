// serveDashboard in a real headless Chromium (Debian's chromium, driven by playwright-core): the
// page shows every stage of a running pipeline, its throughput rises, and the rate limit changes
// from the page. Skipped, loudly, only where no browser is installed (.ci/run installs one).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { Pipeline, createMessage, type Acknowledger } from '@throughway/core';
import { serveDashboard } from '@throughway/dashboard';

const CHROMIUM = '/usr/bin/chromium';
const HANDLERS = new URL('./fixtures/handlers.ts', import.meta.url);
/** Screenshots land here (test output; gitignored). */
const OUTPUT = new URL('../test-output/', import.meta.url);
const hasBrowser = existsSync(CHROMIUM);
if (!hasBrowser) {
  console.warn(`\n${'!'.repeat(100)}\n!! ${CHROMIUM} is missing: the dashboard's browser tests are SKIPPED. Install it: apt-get install -y chromium\n${'!'.repeat(100)}\n`);
}

const unique = (prefix: string) => `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/** An endless source of small events (the pipeline's rate limit paces it). */
function endless(ack: Acknowledger) {
  let n = 0;
  return {
    handleDemand(demand: number) {
      return Array.from({ length: demand }, () => {
        const i = n++;
        return createMessage({ id: i, kind: i % 3 === 0 ? 'audit' : 'write', fail: i % 50 === 7 ? 'no customer' : i % 50 === 21 ? 'bad total' : undefined }, { acknowledger: { module: ack, ref: 'r' } });
      });
    },
  };
}

describe.skipIf(!hasBrowser)('dashboard in headless Chromium', () => {
  let browser: BrowserContext;
  let profile: string;
  const pipelines: Pipeline[] = [];

  beforeAll(async () => {
    profile = mkdtempSync(join(tmpdir(), 'throughway-chromium-'));
    // A fresh profile (--user-data-dir) of our own, removed afterwards.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterEach(async () => {
    await Promise.all(pipelines.splice(0).map((p) => p.stop({ timeout: 5000 }).catch(() => undefined)));
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  async function start(allowControl: boolean): Promise<{ pipeline: Pipeline; page: Page; acked: () => number }> {
    let acked = 0;
    const ack: Acknowledger = { ack: (_ref, successful, failed) => void (acked += successful.length + failed.length) };
    const pipeline = await Pipeline.start({
      name: unique('dash'),
      handlers: HANDLERS,
      producer: { module: endless(ack), rateLimiting: { allowedMessages: 200, interval: 100 } },
      processors: { default: { concurrency: 1, runtime: 'threads' } },
      batchers: { insert_all: { concurrency: 2, batchSize: 100, batchTimeout: 50 }, audit: { batchSize: 200, batchTimeout: 50 } },
    });
    pipelines.push(pipeline);
    const server = await serveDashboard(pipeline, { port: 0, allowControl });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await page.waitForSelector('[data-stage="processor:default"]', { timeout: 30_000 });
    expect(errors).toEqual([]);
    return { pipeline, page, acked: () => acked };
  }

  const figure = async (page: Page, id: string): Promise<number> => Number(((await page.textContent(`#${id}`)) ?? '').replace(/,/g, ''));

  test('shows every stage of the topology, live: the throughput figure rises while messages flow', async () => {
    const { pipeline, page, acked } = await start(false);
    const stages = await page.$$eval('[data-stage]', (nodes) => nodes.map((n) => n.getAttribute('data-stage')));
    expect(stages.sort()).toEqual(['batcher:audit', 'batcher:insert_all', 'processor:default', 'producer:default', 'slot:audit:0', 'slot:insert_all:0', 'slot:insert_all:1']);
    expect(await page.textContent('[data-stage="batcher:insert_all"] .title')).toBe('insert_all');
    expect(await page.textContent('#pipeline-name')).toBe(pipeline.name);

    // The page updates itself (server-sent events): the acked total and the rate go up.
    const first = await figure(page, 'acked-total');
    await page.waitForFunction((before) => Number(document.getElementById('acked-total')!.textContent!.replace(/,/g, '')) > before + 100, first, { timeout: 30_000 });
    await page.waitForFunction(() => Number(document.getElementById('throughput')!.textContent!.replace(/,/g, '')) > 0, undefined, { timeout: 30_000 });
    expect(await figure(page, 'acked-total')).toBeLessThanOrEqual(acked());
    // Each stage shows its throughput and load; in-flight counts where the engine keeps them.
    await page.waitForFunction(() => /^[1-9][\d,]* msg\/s$/.test(document.querySelector('[data-stage="processor:default"] [data-metric="throughput"]')!.textContent!), undefined, { timeout: 30_000 });
    expect(await page.textContent('[data-stage="processor:default"] [data-metric="load"]')).toMatch(/^load \d+%$/);
    expect(await page.textContent('[data-stage="batcher:insert_all"] [data-metric="in-flight"]')).toMatch(/^in flight [\d,]+$/);
    // Failures by reason, and the chart has drawn its lines.
    await page.waitForFunction(() => document.querySelectorAll('#failures td.count').length === 2, undefined, { timeout: 30_000 });
    expect(await page.$$eval('#failures tr td:last-child', (tds) => tds.map((td) => td.textContent).sort())).toEqual(['bad total', 'no customer']);
    await page.waitForSelector('#chart polyline.acked', { timeout: 30_000 });
    // Control is off: no form, and the API refuses.
    expect(await page.isHidden('#rate-form')).toBe(true);
    const refused = await page.evaluate(async () => (await fetch('api/rate-limit', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"allowedMessages":5}' })).status);
    expect(refused).toBe(403);
    expect(pipeline.getRateLimiting()).toEqual({ allowedMessages: 200, interval: 100 });
    await page.screenshot({ path: new URL('dashboard.png', OUTPUT).pathname, fullPage: true });

    await pipeline.stop();
    await page.waitForFunction(() => document.getElementById('state')!.textContent === 'stopped', undefined, { timeout: 30_000 });
    await page.close();
  });

  test('with allowControl, the rate limit changes from the page through updateRateLimiting', async () => {
    const { pipeline, page } = await start(true);
    await page.waitForSelector('#rate-form:not([hidden])', { timeout: 30_000 });
    expect(await page.inputValue('#rate-allowed')).toBe('200');
    await page.fill('#rate-allowed', '35');
    await page.fill('#rate-interval', '250');
    await page.click('#rate-apply');
    await page.waitForFunction(() => document.getElementById('rate-result')!.textContent === 'now 35 per 250 ms', undefined, { timeout: 30_000 });
    expect(pipeline.getRateLimiting()).toEqual({ allowedMessages: 35, interval: 250 });
    await page.waitForFunction(() => document.getElementById('rate-limit')!.dataset.allowed === '35', undefined, { timeout: 30_000 });
    // A bad value is refused with the engine's own message, and nothing changes.
    await page.fill('#rate-allowed', '0');
    await page.evaluate(() => (document.getElementById('rate-allowed') as HTMLInputElement).removeAttribute('min'));
    await page.click('#rate-apply');
    await page.waitForFunction(() => document.getElementById('rate-result')!.textContent!.startsWith('refused: Expected `allowedMessages`'), undefined, { timeout: 30_000 });
    expect(pipeline.getRateLimiting()).toEqual({ allowedMessages: 35, interval: 250 });
    await page.close();
  });
});

describe('serveDashboard without a browser', () => {
  test('serves its own assets, rejects bad options, and closes with the pipeline', async () => {
    const pipeline = await Pipeline.start({ name: unique('plain'), handlers: HANDLERS, producer: { module: { handleDemand: () => [] } }, processors: { default: { concurrency: 1, runtime: 'inline' } } });
    await expect(serveDashboard(pipeline, { port: -1 })).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`serveDashboard.port`') });
    await expect(serveDashboard(pipeline, { allowControl: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`serveDashboard.allowControl`') });
    const server = await serveDashboard(pipeline, { port: 0, allowControl: true });
    const html = await (await fetch(server.url)).text();
    expect(html).toContain('<script src="app.js"></script>');
    // Nothing is fetched from elsewhere: the page works offline.
    expect(html).not.toMatch(/https?:\/\//);
    expect((await fetch(`${server.url}app.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const snapshot = (await (await fetch(`${server.url}api/snapshot`)).json()) as { stages: { id: string }[]; rateLimiting: unknown };
    expect(snapshot.stages.map((s) => s.id)).toEqual(['producer:default', 'processor:default']);
    expect(snapshot.rateLimiting).toBeNull();
    // Without a rate limit the control answers 409; without JSON it answers 415.
    const post = (type: string) => fetch(`${server.url}api/rate-limit`, { method: 'POST', headers: { 'content-type': type }, body: '{"allowedMessages":5}' });
    expect((await post('application/json')).status).toBe(409);
    expect((await post('text/plain')).status).toBe(415);
    await pipeline.stop();
    const deadline = Date.now() + 10_000;
    while (process.getActiveResourcesInfo().includes('TCPServerWrap') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(process.getActiveResourcesInfo()).not.toContain('TCPServerWrap');
  });
});
