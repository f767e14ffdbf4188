#!/usr/bin/env node
// Packs every publishable package under packages/ and uses the tarballs the way a user would, in
// scratch projects outside the workspace, with plain `npm install`:
//   1. each tarball holds dist (JS, types and their maps), README.md, LICENSE and package.json only, and no
//      `workspace:` range is left in it;
//   2. "sqlite": every tarball + better-sqlite3 + tsx + typescript; a .js handler module and main
//      file as the README shows, and a .ts pair run with tsx, each running a pipeline whose batcher
//      writes through sqliteRepo in a batch worker thread to completion; `tsc --strict` passes;
//      every packed package imports;
//   3. "pg-only": core + workers + pg install without compiling anything (no install scripts, no
//      native addon), and a pipeline writes to PostgreSQL through postgresRepo; then a .ts handler
//      module without tsx fails with an error that says to install tsx, and sqlite-producer
//      without better-sqlite3 fails with ERR_THROUGHWAY_MISSING_DRIVER naming it.
// Ends with `pack-check: N passed, N failed`. Run after `pnpm build` (.ci/run does), on the Node
// whose headers compile better-sqlite3. PACK_CHECK_KEEP=1 keeps the scratch directory.
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratchFiles } from './pack-check-files.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'throughway-pack-'));
const tarballs = join(scratch, 'tarballs');
mkdirSync(tarballs);
const results = [];
const started = Date.now();

function sh(cmd, args, options = {}) {
  const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, timeout: 600_000, ...options });
  return out;
}

const shAsync = (cmd, args, options = {}) =>
  promisify(execFile)(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 600_000, ...options }).then((r) => r.stdout);

/** Runs one named check; a throw fails it with its message (and the command's output, if any). */
async function check(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    results.push({ name, ok: true });
    console.log(`PASS ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? `: ${note}` : ''}`);
    return true;
  } catch (error) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${error.message}`);
    for (const stream of ['stdout', 'stderr']) if (error[stream]) console.log(`--- ${stream} ---\n${String(error[stream]).slice(-6000)}`);
    return false;
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------
// Pack

const packages = readdirSync(join(ROOT, 'packages'))
  .map((dir) => join(ROOT, 'packages', dir))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter((p) => !p.manifest.private);
console.log(`publishable packages: ${packages.map((p) => p.manifest.name).join(', ')}`);
console.log(`node ${process.version}, npm ${sh('npm', ['-v']).trim()}, scratch ${scratch}`);

const tarballOf = new Map();
const packed = await check('pnpm pack of every package', () => {
  // One recursive pnpm pack (npx start-up costs seconds a call), then each tarball by its name.
  sh('npx', ['-y', 'pnpm@10', '-r', '--filter', './packages/*', 'pack', '--pack-destination', tarballs], { cwd: ROOT });
  for (const file of readdirSync(tarballs).filter((f) => f.endsWith('.tgz'))) {
    const { name } = JSON.parse(sh('tar', ['-xzOf', join(tarballs, file), 'package/package.json']));
    tarballOf.set(name, join(tarballs, file));
  }
  const missing = packages.map((p) => p.manifest.name).filter((name) => !tarballOf.has(name));
  assert(missing.length === 0, `no tarball for ${missing.join(', ')}`);
  return `${tarballOf.size} tarballs`;
});
if (!packed) finish();

for (const p of packages) {
  const name = p.manifest.name;
  await check(`${name}: tarball holds dist, types, README and LICENSE only`, () => {
    const files = sh('tar', ['-tzf', tarballOf.get(name)]).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    // A package that lists `assets` in its files ships static files beside dist (the dashboard's page).
    const assets = (p.manifest.files ?? []).includes('assets');
    const allowed = (f) => f === 'package.json' || f === 'README.md' || f === 'LICENSE' || /^dist\/.+\.(js|d\.ts)(\.map)?$/.test(f) || (assets && /^assets\/[\w.-]+\.(html|js|css)$/.test(f));
    const stray = files.filter((f) => !allowed(f));
    assert(stray.length === 0, `unexpected files: ${stray.slice(0, 10).join(', ')}`);
    for (const needed of ['README.md', 'LICENSE', 'package.json']) assert(files.includes(needed), `${needed} is missing`);
    assert(files.some((f) => f.endsWith('.d.ts')), 'no type declarations');
    const manifest = JSON.parse(sh('tar', ['-xzOf', tarballOf.get(name), 'package/package.json']));
    const text = JSON.stringify(manifest);
    assert(!text.includes('workspace:'), `a workspace: range is left in package.json: ${text.match(/"[^"]*":"workspace:[^"]*"/)?.[0]}`);
    for (const [sub, target] of Object.entries(manifest.exports ?? {})) {
      for (const file of Object.values(typeof target === 'string' ? { default: target } : target)) {
        assert(files.includes(String(file).replace(/^\.\//, '')), `exports["${sub}"] names ${file}, which is not in the tarball`);
      }
    }
    assert(manifest.license === undefined || manifest.license === 'MIT', `license is ${manifest.license}, expected MIT`);
    return `${files.length} files`;
  });
}

// ---------------------------------------------------------------------------------------------
// Scratch projects

function project(name, manifest, files) {
  const dir = join(scratch, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `scratch-${name}`, private: true, type: 'module', ...manifest }, null, 2));
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

/** The workspace's own versions of the dev tools, so that the scratch project checks what CI uses. */
function lockedVersion(pkg) {
  const dir = readdirSync(join(ROOT, 'node_modules/.pnpm')).find((d) => d.startsWith(`${pkg.replace('/', '+')}@`));
  assert(dir, `${pkg} is not installed in the workspace`);
  return dir.slice(pkg.length + 1).split('_')[0];
}

const fileDeps = (names) => Object.fromEntries(names.map((n) => [n, `file:${tarballOf.get(n)}`]));
const npmInstall = (cwd, extra = []) => sh('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', ...extra], { cwd });
const PG = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: process.env.PACK_CHECK_PGDATABASE ?? 'test', user: process.env.PGUSER ?? 'postgres' };

const files = scratchFiles();

/** A loopback server that serves the workspace's better-sqlite3 build as prebuild-install expects it. */
async function sqlitePrebuildMirror() {
  const pkgDir = readdirSync(join(ROOT, 'node_modules/.pnpm')).find((d) => d.startsWith('better-sqlite3@'));
  const source = join(ROOT, 'node_modules/.pnpm', pkgDir, 'node_modules/better-sqlite3');
  const { version } = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8'));
  assert(existsSync(join(source, 'build/Release/better_sqlite3.node')), `the workspace's better-sqlite3 is not built (${source})`);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const archive = join(scratch, name);
  sh('tar', ['-czf', archive, '-C', source, 'build/Release/better_sqlite3.node']);
  let served = 0;
  const server = createServer((req, res) => {
    if (req.url === `/v${version}/${name}`) {
      served++;
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(readFileSync(archive));
    } else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, served: () => served, close: () => server.close() };
}

// 2. sqlite: every package, better-sqlite3, tsx, typescript
const all = packages.map((p) => p.manifest.name);
const sqliteDir = project(
  'sqlite',
  {
    dependencies: { ...fileDeps(all), 'better-sqlite3': `^${lockedVersion('better-sqlite3')}` },
    devDependencies: {
      tsx: lockedVersion('tsx'),
      typescript: lockedVersion('typescript'),
      '@types/node': `^${lockedVersion('@types/node').split('.')[0]}`,
      '@types/better-sqlite3': lockedVersion('@types/better-sqlite3'),
    },
  },
  files.sqlite,
);
const installed = await check('sqlite project: npm install of every tarball + better-sqlite3 + tsx + typescript', async () => {
  // better-sqlite3's install script fetches a prebuilt addon (prebuild-install) and compiles only
  // when there is none. This machine cannot reach the prebuilds' host, so the workspace's own build
  // of the same version, for this Node, is served as the prebuild from a loopback mirror (the
  // package's documented npm_config_better_sqlite3_binary_host); PACK_CHECK_COMPILE=1 compiles.
  const mirror = process.env.PACK_CHECK_COMPILE === '1' ? undefined : await sqlitePrebuildMirror();
  try {
    const env = mirror ? { ...process.env, npm_config_better_sqlite3_binary_host: mirror.url } : process.env;
    const log = await shAsync('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: sqliteDir, env });
    if (mirror) assert(mirror.served() === 1, `the prebuild was not fetched from the mirror; install log:\n${log.slice(-3000)}`);
  } finally {
    mirror?.close();
  }
  assert(existsSync(join(sqliteDir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')), 'better-sqlite3 was not built');
});
if (installed) {
  await check('sqlite project: main.js + handlers.js run a sqliteRepo batch pipeline to completion', () => {
    const out = sh('node', ['main.js'], { cwd: sqliteDir });
    assert(out.includes('js: 300 rows written, 300 acked, 1 failed'), out);
    return out.trim();
  });
  await check('sqlite project: main.ts + handlers.ts (sqliteQueue source) run with tsx to completion', () => {
    const out = sh('npx', ['tsx', 'main.ts'], { cwd: sqliteDir });
    assert(out.includes('ts: 250 rows written, queue empty, 1 dead-lettered'), out);
    return out.trim();
  });
  await check('sqlite project: tsc --strict type-checks main.ts and handlers.ts', () => {
    sh('npx', ['tsc', '--strict', '--noEmit', '-p', '.'], { cwd: sqliteDir });
  });
  await check('sqlite project: every packed package imports', () => {
    const out = sh('node', ['--input-type=module', '-e', `for (const n of ${JSON.stringify(all)}) { const m = await import(n); console.log(n + ': ' + Object.keys(m).length + ' exports'); }`], { cwd: sqliteDir });
    return out.trim().split('\n').join('; ');
  });
}

// 3. pg-only: core + workers + pg, nothing compiled
const pgDir = project('pg-only', { dependencies: { ...fileDeps(['@throughway/core', '@throughway/workers']), pg: `^${lockedVersion('pg')}` } }, files.pg);
const pgInstalled = await check('pg-only project: core + workers + pg install without compiling anything', () => {
  const log = npmInstall(pgDir);
  const withScripts = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (entry === '.bin' || !statSync(path).isDirectory()) continue;
      if (entry.startsWith('@')) {
        walk(path);
        continue;
      }
      const manifestPath = join(path, 'package.json');
      if (existsSync(manifestPath)) {
        const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
        const scripts = m.scripts ?? {};
        if (scripts.preinstall || scripts.install || scripts.postinstall || existsSync(join(path, 'binding.gyp'))) withScripts.push(relative(pgDir, path));
      }
      if (existsSync(join(path, 'node_modules'))) walk(join(path, 'node_modules'));
    }
  };
  walk(join(pgDir, 'node_modules'));
  assert(withScripts.length === 0, `packages with install scripts or native code: ${withScripts.join(', ')}`);
  assert(!existsSync(join(pgDir, 'node_modules/better-sqlite3')), 'better-sqlite3 was installed');
  assert(!/gyp|prebuild/i.test(log), `the install log mentions a native build:\n${log}`);
  const count = readdirSync(join(pgDir, 'node_modules')).length;
  return `${count} entries in node_modules, no install scripts, no native addon`;
});
if (pgInstalled) {
  await check('pg-only project: a pipeline writes to PostgreSQL through postgresRepo in a batch thread', () => {
    const out = sh('node', ['main.js'], { cwd: pgDir, env: { ...process.env, PACK_CHECK_PG: JSON.stringify(PG) } });
    assert(out.includes('pg: 200 rows written, 200 acked'), out);
    return out.trim();
  });
  await check('pg-only project: a .ts handler module without tsx fails with an error that says to install tsx', () => {
    const out = sh('node', ['no-tsx.js'], { cwd: pgDir });
    assert(out.includes('ERR_THROUGHWAY_HANDLERS_LOAD') && out.includes('npm install --save-dev tsx'), out);
    return out.trim().slice(0, 300);
  });
  if (tarballOf.has('@throughway/sqlite-producer')) {
    await check('pg-only project + sqlite-producer: without better-sqlite3, sqliteQueue throws ERR_THROUGHWAY_MISSING_DRIVER naming it', () => {
      npmInstall(pgDir, ['--no-save', tarballOf.get('@throughway/sqlite-producer')]);
      assert(!existsSync(join(pgDir, 'node_modules/better-sqlite3')), 'npm installed the optional peer better-sqlite3');
      const out = sh('node', ['missing-driver.js'], { cwd: pgDir });
      assert(out.includes('ERR_THROUGHWAY_MISSING_DRIVER') && out.includes('npm install better-sqlite3'), out);
      return out.trim();
    });
  }
}

finish();

function finish() {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  if (process.env.PACK_CHECK_KEEP === '1') console.log(`scratch kept at ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
  console.log(`pack check took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`pack-check: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
