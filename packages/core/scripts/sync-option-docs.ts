/**
 * Writes the `Range` and `@default` lines of the core options' JSDoc (src/options.ts) from
 * OPTION_SCHEMA (src/option-schema.ts), the one place they are stated. The rest of each comment is
 * prose and stays as written. `pnpm sync-option-docs` rewrites the file; `--check` only says
 * whether it is out of date (exit 1), and a core test fails the same way.
 *
 * Run: tsx packages/core/scripts/sync-option-docs.ts [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MAX_TIMER_MS, OPTION_SCHEMA, type OptionSpec } from '../src/option-schema.js';

export const OPTIONS_FILE = fileURLToPath(new URL('../src/options.ts', import.meta.url));
export const SYNC_COMMAND = 'pnpm sync-option-docs';

/** Where each options interface sits in the schema's paths. */
const PREFIXES: Record<string, string> = {
  RateLimitingOptions: 'producer.rateLimiting.',
  ProcessorOptions: 'processors.default.',
  BatcherOptions: 'batchers.*.',
  PipelineOptions: '',
};

function bound(value: number): string {
  if (value === MAX_TIMER_MS) return '2^31-1';
  if (value >= 1e6 && Number.isInteger(Math.log10(value))) return `1e${Math.log10(value)}`;
  return String(value);
}

/** `Range 1..1e6.` for a numeric option, else null. */
export function rangeLine(spec: OptionSpec): string | null {
  if (spec.min === undefined || spec.max === undefined) return null;
  const max = spec.maxDoc ?? bound(spec.max);
  return spec.minExclusive ? `Range above ${bound(spec.min)}, up to ${max}.` : `Range ${bound(spec.min)}..${max}.`;
}

const RANGE = / ?Range [^*]*?\.(?= |$)/;

/** The JSDoc of one option, its prose kept, its range and default lines from the schema. */
function rewriteComment(comment: string[], indent: string, spec: OptionSpec): string[] {
  const prose: string[] = [];
  for (const line of comment) {
    let text = line.trim();
    if (text.startsWith('/**')) text = text.slice(3);
    if (text.endsWith('*/')) text = text.slice(0, -2);
    text = text.trim().replace(/^\* ?/, '').trimEnd();
    if (text.startsWith('@default')) continue;
    text = text.replace(RANGE, '').trimEnd();
    if (text !== '') prose.push(text);
  }
  const range = rangeLine(spec);
  if (range) prose.push(range);
  if (spec.default !== undefined) prose.push(`@default ${spec.default}`);
  if (prose.length === 1 && !prose[0]!.startsWith('@')) return [`${indent}/** ${prose[0]} */`];
  return [`${indent}/**`, ...prose.map((p) => `${indent} * ${p}`), `${indent} */`];
}

/**
 * The options file as the schema says it should read. Throws on an option property the schema
 * has no row for, so that a new option cannot go undocumented.
 */
export function syncOptionDocs(source: string, schema: readonly OptionSpec[] = OPTION_SCHEMA): string {
  const byPath = new Map(schema.map((s) => [s.path, s]));
  const out: string[] = [];
  // Inside an interface: the schema prefix of each open `{` (null where none applies).
  const scopes: (string | null)[] = [];
  // The JSDoc just read, which belongs to the next line of code.
  let comment: string[] = [];
  let open = false;
  for (const line of source.split('\n')) {
    if (open) {
      comment.push(line);
      open = !line.includes('*/');
      continue;
    }
    if (/^\s*\/\*\*/.test(line) && !/\*\/\s*\S/.test(line)) {
      out.push(...comment);
      comment = [line];
      open = !line.includes('*/');
      continue;
    }
    const scope = scopes.at(-1) ?? null;
    const property = scope !== null ? /^(\s*)(\w+)\??:/.exec(line) : null;
    const spec = property ? byPath.get(scope + property[2]!) : undefined;
    if (property && !spec && !schema.some((s) => s.path.startsWith(`${scope}${property[2]}.`))) {
      throw new Error(`src/options.ts: the option \`${scope}${property[2]}\` has no row in OPTION_SCHEMA (src/option-schema.ts)`);
    }
    out.push(...(spec ? rewriteComment(comment, property![1]!, spec) : comment), line);
    comment = [];
    if (scopes.length === 0) {
      const iface = /^export interface (\w+)\b.*\{\s*$/.exec(line);
      if (iface) scopes.push(PREFIXES[iface[1]!] ?? null);
    } else if (/\{\s*$/.test(line)) {
      scopes.push(property && scope !== null ? `${scope}${property[2]}.` : null);
    } else if (/^\s*\};?\s*$/.test(line)) {
      scopes.pop();
    }
  }
  return out.join('\n');
}

function main(): void {
  const source = readFileSync(OPTIONS_FILE, 'utf8');
  const synced = syncOptionDocs(source);
  if (process.argv.includes('--check')) {
    if (synced !== source) {
      process.stderr.write(`packages/core/src/options.ts: the options' Range/@default lines differ from OPTION_SCHEMA; run \`${SYNC_COMMAND}\`\n`);
      process.exitCode = 1;
    }
    return;
  }
  if (synced !== source) writeFileSync(OPTIONS_FILE, synced);
  process.stdout.write(synced !== source ? 'packages/core/src/options.ts: rewritten from OPTION_SCHEMA\n' : 'packages/core/src/options.ts: up to date\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
