// `pnpm demo --dashboard`: the demo's own pipeline, in a child process, seen in a real headless
// Chromium: every stage on the page, the throughput figure rising, the rate limit changed from
// the page (the demo serves it with allowControl). Skipped, loudly, only without a browser.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { startCli, tempDir } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const hasBrowser = existsSync(CHROMIUM);
if (!hasBrowser) console.warn(`\n!!!!! ${CHROMIUM} is missing: the demo's dashboard test is SKIPPED (apt-get install -y chromium) !!!!!\n`);

describe.skipIf(!hasBrowser)('the demo with --dashboard', () => {
  const tmp = tempDir('mystex-dash-');
  afterAll(() => tmp.cleanup());

  it('serves the live dashboard of its pipeline: every stage, rising throughput, a rate limit changed from the page', async () => {
    const run = startCli(['--events', '60000', '--database', path.join(tmp.dir, 'd.db'), '--queue', path.join(tmp.dir, 'q.db'), '--rate-limit', '1500/1s', '--dashboard', '0', '--json', '--log-level', 'info']);
    const profile = mkdtempSync(path.join(os.tmpdir(), 'mystex-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    try {
      const deadline = Date.now() + 60_000;
      let url: string | undefined;
      while (!(url = /dashboard at (http:[^\s"]+)/.exec(run.output())?.[1])) {
        if (Date.now() > deadline) throw new Error(`no dashboard URL within 60 s:\n${run.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForSelector('[data-stage="slot:insert_all:0"]', { timeout: 30_000 });
      const stages = await page.$$eval('[data-stage]', (nodes) => nodes.map((n) => n.getAttribute('data-stage')).sort());
      expect(stages).toEqual(['batcher:default', 'batcher:insert_all', 'processor:default', 'producer:default', 'slot:default:0', 'slot:insert_all:0']);
      expect(await page.textContent('#pipeline-name')).toBe('mystex-pizza');
      const acked = () => page.evaluate(() => Number(document.getElementById('acked-total')!.textContent!.replace(/,/g, '')));
      const before = await acked();
      await page.waitForFunction((b) => Number(document.getElementById('acked-total')!.textContent!.replace(/,/g, '')) > b + 1000, before, { timeout: 30_000 });
      await page.waitForFunction(() => Number(document.getElementById('throughput')!.textContent!.replace(/,/g, '')) > 0, undefined, { timeout: 30_000 });
      expect(await acked()).toBeGreaterThan(before);

      await page.waitForSelector('#rate-form:not([hidden])', { timeout: 30_000 });
      await page.fill('#rate-allowed', '4000');
      await page.fill('#rate-interval', '500');
      await page.click('#rate-apply');
      await page.waitForFunction(() => document.getElementById('rate-result')!.textContent === 'now 4,000 per 500 ms', undefined, { timeout: 30_000 });
      // What the pipeline itself reports (getRateLimiting, through the snapshot the page reads).
      const snapshot = await page.evaluate(async () => (await fetch('api/snapshot')).json());
      expect(snapshot.rateLimiting).toMatchObject({ allowedMessages: 4000, interval: 500 });
      // Into the test output (gitignored), for a person to look at.
      const output = new URL('../test-output/', import.meta.url).pathname;
      mkdirSync(output, { recursive: true });
      await page.screenshot({ path: path.join(output, 'demo-dashboard.png'), fullPage: true });
    } finally {
      run.child.kill('SIGTERM');
      await run.done;
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
