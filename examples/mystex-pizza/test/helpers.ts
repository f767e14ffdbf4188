// Shared by the demo's tests: temp dirs, Postgres schemas unique to a test, running the CLI.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** The local server: trust auth on the unix socket (override with PG_URL). */
export const PG_BASE = process.env.PG_URL ?? 'postgres://postgres@/test?host=/var/run/postgresql';

export function tempDir(prefix = 'mystex-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function uniqueSchema(tag: string): string {
  return `mystex_t_${tag}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

export function pgUrl(schema: string): string {
  return `${PG_BASE}${PG_BASE.includes('?') ? '&' : '?'}schema=${schema}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_BASE });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the built CLI; `done` resolves when it exits. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<CliRun>; output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliRun>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, output: () => stdout + stderr };
}

export async function runCli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliRun> {
  return startCli(args, env).done;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
