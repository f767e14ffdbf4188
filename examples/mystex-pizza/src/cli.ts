#!/usr/bin/env node
/**
 * `pnpm demo`: parses the options, runs the demo, exits 0 when the consistency check passed, 1 when
 * it failed (or the run broke), 2 on a usage error, 130/143 when interrupted by SIGINT/SIGTERM.
 */
import { parseArgs, usage } from './args.js';
import { SetupError, UsageError } from './errors.js';
import { runDemo } from './run.js';

async function main(): Promise<number> {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`mystex-pizza: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (options.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  try {
    const { exitCode } = await runDemo(options);
    return exitCode;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`mystex-pizza: ${error.message}\n`);
      return 2;
    }
    // Expected failures get their message; anything else its stack, to be reported.
    process.stderr.write(`mystex-pizza: ${error instanceof SetupError ? error.message : ((error as Error)?.stack ?? String(error))}\n`);
    return 1;
  }
}

process.exitCode = await main();
