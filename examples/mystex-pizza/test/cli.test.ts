// The CLI's contract with the shell: --help, usage errors, exit codes.
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

describe('cli', () => {
  it('prints the options with --help and exits 0', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: pnpm demo [options]');
    expect(run.stdout).toContain('--rate-limit N/INTERVAL');
  });

  it('exits 2 on a usage error and says what is wrong', async () => {
    const run = await runCli(['--events', 'lots']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('mystex-pizza: --events expects a whole number, got "lots"\n');
  });

  it('exits 1 with a clear message when Postgres cannot be reached', async () => {
    const run = await runCli(['--database', 'postgres://postgres@127.0.0.1:1/test', '--events', '10']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/could not connect to postgres:\/\/postgres@127\.0\.0\.1:1\/test\?schema=mystex: .*ECONNREFUSED/);
  });
});
